"""The sandbox's built-in mail catcher: an SMTP server (aiosmtpd) that keeps what it receives.

``caja serve`` runs it on 127.0.0.1 (``CAJA_MAIL_CATCHER_PORT``, 8325 by default) in the
server's own event loop; every message accepted is stored in ``caught_emails`` before the
server answers 250, so an accepted message is never lost. Developers read them with
``GET /_caja/emails`` and on the dashboard. It delivers nothing anywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import structlog
from aiosmtpd.smtp import SMTP, Envelope, Session

from caja.domain.clock import Clock
from caja.services import emails
from caja.store.uow import UnitOfWorkFactory

log = structlog.get_logger("caja.mail")

MAX_MESSAGE_BYTES = 10 * 1024 * 1024
HOSTNAME = "caja.localhost"


class _StoreHandler:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock
        self.received = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        try:
            caught = await emails.catch(
                self._uow, self._clock, str(envelope.mail_from or ""), list(envelope.rcpt_tos), raw
            )
        except Exception:
            log.exception("mail catcher could not store a message")
            return "451 4.3.0 Could not store the message; try again later"
        self.received += 1
        log.info("mail caught", id=caught.id, recipients=len(caught.recipients), account=caught.account_id)
        return f"250 2.0.0 Message accepted as {caught.id}"


class MailCatcher:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, host: str, port: int) -> None:
        self._handler = _StoreHandler(uow, clock)
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None

    @property
    def received(self) -> int:
        return self._handler.received

    async def start(self) -> bool:
        """Listen; False (logged) when the port is taken, so the server still starts without it."""
        loop = asyncio.get_running_loop()
        # aiosmtpd logs every SMTP command at INFO; Caja logs what it caught itself.
        logging.getLogger("mail.log").setLevel(logging.WARNING)

        def protocol() -> Any:
            return SMTP(
                self._handler,
                hostname=HOSTNAME,
                ident="Caja mail catcher",
                data_size_limit=MAX_MESSAGE_BYTES,
                enable_SMTPUTF8=True,
                timeout=60,
                loop=loop,
            )

        try:
            self._server = await loop.create_server(protocol, self.host, self.port)
        except OSError as exc:
            log.warning("mail catcher not started", host=self.host, port=self.port, error=str(exc))
            return False
        sockets = self._server.sockets
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        log.info("mail catcher listening", host=self.host, port=self.port)
        return True

    async def stop(self) -> None:
        if self._server is None:
            return
        server, self._server = self._server, None
        server.close()
        close_clients = getattr(server, "close_clients", None)  # Python 3.13+
        if close_clients is not None:
            close_clients()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.wait_closed(), timeout=2.0)
