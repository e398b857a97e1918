"""Sending e-mail: the SMTP mailer and the handler of ``email`` jobs.

The mailer sends through the SMTP server in the settings (STARTTLS, TLS or plain, with optional
authentication); with none configured it sends to the built-in mail catcher when ``caja serve``
runs one, and otherwise reports that there is nowhere to send (the job is retried, so a message
enqueued before the operator configures SMTP is not lost). Every attempt is recorded like a
webhook delivery: the SMTP server's address, the message headers and text, and its reply.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from email.utils import parseaddr
from typing import Any

import structlog

from caja.config import EmailInTestMode, MailSettings, SmtpSecurity
from caja.delivery.dispatcher import AttemptOutcome, JobContext
from caja.delivery.smtp_client import RecipientsRefused, SmtpConnection, SmtpError
from caja.domain.clock import Clock
from caja.domain.jobs import Job
from caja.domain.mail import (
    RELAY_CHECK_TEMPLATE,
    ComposedMessage,
    OutgoingEmail,
    TemplatedEmail,
    compose_message,
    email_from_payload,
)

log = structlog.get_logger("caja.mail")


@dataclass(frozen=True, slots=True)
class SmtpTarget:
    host: str
    port: int
    security: SmtpSecurity
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None

    @property
    def url(self) -> str:
        scheme = "smtps" if self.security is SmtpSecurity.TLS else "smtp"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"


def smtp_target(settings: MailSettings) -> SmtpTarget | None:
    """Where mail goes: the configured server, else the built-in catcher, else nowhere."""
    if settings.smtp_host:
        return SmtpTarget(
            host=settings.smtp_host,
            port=settings.port,
            security=settings.smtp_security,
            username=settings.smtp_username,
            password=settings.smtp_password,
            ca_file=settings.smtp_ca_file,
        )
    if settings.catcher:
        return SmtpTarget(host=settings.catcher_host, port=settings.catcher_port, security=SmtpSecurity.NONE)
    return None


_LOCAL_HOSTNAME = socket.gethostname() or "localhost"


class SmtpFailure(Exception):
    """A send that did not go through. ``permanent``: trying again cannot help (refused addresses)."""

    def __init__(self, message: str, *, code: int | None = None, permanent: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.permanent = permanent


# An idle connection older than this is closed rather than reused: servers drop idle clients
# (RFC 5321 asks them to wait 5 minutes; many wait less), and a reused dead one costs a retry.
IDLE_SECONDS = 30.0
# Connections kept open for reuse: as many as the dispatcher sends at once to one endpoint by
# default (CAJA_DISPATCHER_PER_ENDPOINT); more may be open while sends overlap.
POOL_SIZE = 8


class Mailer:
    """Sends through a few kept-open SMTP connections, one message at a time on each.

    Opening a connection costs a TCP handshake, the greeting, EHLO (and TLS and AUTH when
    configured) and QUIT: more than the message itself at a payment's e-mail rate. A connection
    is reused while it is younger than ``IDLE_SECONDS`` idle; one that turns out to be closed is
    dropped and the message goes over a new connection.
    """

    def __init__(self, settings: MailSettings) -> None:
        self._settings = settings
        self.target = smtp_target(settings)
        self.sender = settings.mail_from
        self._tls: ssl.SSLContext | None = None
        self._idle: list[tuple[SmtpConnection, float]] = []

    def _tls_context(self, target: SmtpTarget) -> ssl.SSLContext | None:
        if target.security is SmtpSecurity.NONE:
            return None
        if self._tls is None:
            self._tls = ssl.create_default_context(cafile=target.ca_file)
        return self._tls

    async def _open(self, target: SmtpTarget) -> SmtpConnection:
        context = self._tls_context(target)
        return await SmtpConnection.open(
            target.host,
            target.port,
            reply_seconds=self._settings.smtp_timeout,
            # Named once per process, not looked up (DNS) for every connection.
            local_hostname=_LOCAL_HOSTNAME,
            tls=context if target.security is SmtpSecurity.TLS else None,
            starttls=context if target.security is SmtpSecurity.STARTTLS else None,
            username=target.username,
            password=target.password,
        )

    def _reusable(self) -> SmtpConnection | None:
        now = time.monotonic()
        while self._idle:
            smtp, idle_since = self._idle.pop()
            if smtp.is_connected and now - idle_since < IDLE_SECONDS:
                return smtp
            smtp.close()
        return None

    def _release(self, smtp: SmtpConnection) -> None:
        if smtp.is_connected and len(self._idle) < POOL_SIZE:
            self._idle.append((smtp, time.monotonic()))
        else:
            smtp.close()

    async def _reset_or_close(self, smtp: SmtpConnection) -> None:
        if not smtp.is_connected:
            return
        try:
            await smtp.reset()
        except (SmtpError, OSError, TimeoutError):
            smtp.close()
        else:
            self._release(smtp)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for smtp, _ in idle:
            with contextlib.suppress(SmtpError, OSError, TimeoutError):
                await smtp.quit()
            smtp.close()

    async def send(self, message: ComposedMessage) -> str:
        """Hand the message to the SMTP server; its reply. Raises ``SmtpFailure``."""
        target = self.target
        if target is None:
            raise SmtpFailure("no SMTP server configured (set CAJA_SMTP_HOST) and no mail catcher running")
        _name, envelope_from = parseaddr(self.sender)
        reused = self._reusable()
        try:
            if reused is not None:
                try:
                    return await self._send_on(reused, message, envelope_from)
                except ConnectionError:
                    pass  # the server closed it while it sat idle: a new connection below
            return await self._send_on(await self._open(target), message, envelope_from)
        except RecipientsRefused as exc:
            codes = [reply.code for reply in exc.refused.values()]
            raise SmtpFailure(
                str(exc),
                code=codes[0] if codes else None,
                permanent=bool(codes) and all(500 <= c < 600 for c in codes),
            ) from None
        except SmtpError as exc:
            code = exc.reply.code if exc.reply is not None else None
            raise SmtpFailure(f"SMTP {exc}", code=code, permanent=exc.permanent) from None
        except (OSError, TimeoutError) as exc:
            raise SmtpFailure(f"{type(exc).__name__}: {exc}") from None

    async def _send_on(self, smtp: SmtpConnection, message: ComposedMessage, envelope_from: str) -> str:
        try:
            # An empty envelope sender is the null reverse-path ("<>").
            reply, refused = await smtp.send(envelope_from, list(message.recipients), message.data)
        except SmtpError as exc:
            if isinstance(exc, ConnectionError):
                smtp.close()
                raise
            # A refused message leaves the connection usable, once its transaction is reset.
            await self._reset_or_close(smtp)
            raise
        except BaseException:
            smtp.close()
            raise
        self._release(smtp)
        if refused:
            log.warning("some recipients refused", refused=sorted(refused))
        return str(reply)


Render = Callable[[TemplatedEmail], OutgoingEmail]


def test_mode_mailer(settings: MailSettings) -> Mailer | None:
    """The mailer of test-mode payer e-mails when they must not go where live ones go: the
    built-in catcher's (or one with no target when the catcher is off). None: the same mailer."""
    if settings.test_mode_email is EmailInTestMode.RELAY or not settings.smtp_host:
        return None  # relayed like live mail, or the catcher is where all mail goes anyway
    return Mailer(replace(settings, smtp_host=None))


class EmailDelivery:
    """The ``email`` job handler: render the message the job names and send it.

    A test-mode message to a payer goes through ``test_mailer`` when there is one (see
    ``test_mode_mailer``); the operator's relay check goes where live mail goes.
    """

    def __init__(
        self, mailer: Mailer, clock: Clock, render: Render, test_mailer: Mailer | None = None
    ) -> None:
        self._mailer = mailer
        self._test_mailer = test_mailer
        self._clock = clock
        self._render = render

    def _mailer_for(self, job: Job, email: OutgoingEmail) -> Mailer:
        if self._test_mailer is None or job.livemode or email.template == RELAY_CHECK_TEMPLATE:
            return self._mailer
        return self._test_mailer

    def _message(self, payload: dict[str, Any]) -> OutgoingEmail:
        email = email_from_payload(payload)
        return email if isinstance(email, OutgoingEmail) else self._render(email)

    async def __call__(self, job: Job, context: JobContext) -> AttemptOutcome:
        try:
            email = self._message(job.payload)
        except Exception as exc:
            # A payload or template that cannot make a message never will: retrying cannot help.
            reason = f"an e-mail job that cannot be sent: {type(exc).__name__}: {exc}"
            return AttemptOutcome(ok=False, permanent=True, error=reason[:500])
        mailer = self._mailer_for(job, email)
        if mailer.target is None and mailer is self._test_mailer:
            # Never anywhere to go: retrying for a day and a half would only fill the log.
            reason = (
                "test-mode e-mail goes to the mail catcher only (CAJA_TEST_MODE_EMAIL=catcher), which is off"
            )
            return AttemptOutcome(ok=False, permanent=True, error=reason)
        message = compose_message(email, sender=mailer.sender, job_id=job.id, sent_at=self._clock.now())
        started_ms = self._clock.now_ms()
        started = time.monotonic()
        target = mailer.target
        ok, permanent, error = True, False, None
        try:
            reply = await mailer.send(message)
        except SmtpFailure as exc:
            log.info("e-mail not sent", job=job.id, attempt=context.attempt, error=str(exc))
            ok, permanent, error, reply = False, exc.permanent, str(exc)[:500], str(exc)
        return AttemptOutcome(
            ok=ok,
            permanent=permanent,
            started_at=started_ms,
            duration_ms=round((time.monotonic() - started) * 1000),
            url=target.url if target else None,
            error=error,
            request_headers=dict(message.headers),
            request_body=email.text,
            response_body=reply,
        )
