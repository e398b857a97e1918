"""The mailer keeps SMTP connections open and reuses them, and recovers from one the server dropped.

Against a real SMTP server (aiosmtpd, STARTTLS and a login): the client port of each delivered
message tells which connection carried it. Each test runs with the server offering PIPELINING
(the client then writes MAIL, RCPT and DATA at once) and without it (one command at a time).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from caja.config import MailSettings, SmtpSecurity
from caja.delivery.mail import Mailer, SmtpFailure
from caja.domain.mail import ComposedMessage, OutgoingEmail, compose_message
from tests.tools.smtp import TestSmtpServer

pytestmark = pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "one-at-a-time"])


def _message(to: str, subject: str) -> ComposedMessage:
    email = OutgoingEmail(to=(to,), subject=subject, text="Hola\n", html="", template="")
    return compose_message(email, sender="Caja <no-reply@caja.localhost>", job_id="eml_pool", sent_at=0)


def _mailer(relay: TestSmtpServer) -> Mailer:
    return Mailer(
        MailSettings(
            smtp_host="127.0.0.1",
            smtp_port=relay.port,
            smtp_security=SmtpSecurity.STARTTLS,
            smtp_username="caja",
            smtp_password="s3creta",
            smtp_ca_file=str(relay.cert),
            smtp_timeout=5.0,
            catcher=False,
        )
    )


async def test_messages_share_one_connection(tmp_path: Path, pipelining: bool) -> None:
    relay = TestSmtpServer(tmp_path, username="caja", password="s3creta", pipelining=pipelining).start()
    mailer = _mailer(relay)
    try:
        for n in range(5):
            await mailer.send(_message(f"cliente{n}@example.com", f"n{n}"))
    finally:
        await mailer.close()
        relay.stop()
    assert [d.rcpt_tos for d in relay.delivered] == [[f"cliente{n}@example.com"] for n in range(5)]
    assert len({d.peer for d in relay.delivered}) == 1
    assert all(d.tls and d.login == "caja" for d in relay.delivered)


async def test_a_refused_message_leaves_the_connection_usable(tmp_path: Path, pipelining: bool) -> None:
    relay = TestSmtpServer(
        tmp_path,
        username="caja",
        password="s3creta",
        pipelining=pipelining,
        temporary_failures=1,
        refuse=lambda address: address.startswith("rechazado"),
    ).start()
    mailer = _mailer(relay)
    try:
        with pytest.raises(SmtpFailure) as temporary:
            await mailer.send(_message("uno@example.com", "451"))
        assert temporary.value.code == 451 and not temporary.value.permanent
        with pytest.raises(SmtpFailure) as refused:
            await mailer.send(_message("rechazado@example.com", "550"))
        assert refused.value.permanent
        await mailer.send(_message("dos@example.com", "ok"))
        await mailer.send(_message("tres@example.com", "ok"))
    finally:
        await mailer.close()
        relay.stop()
    assert [d.rcpt_tos for d in relay.delivered] == [["dos@example.com"], ["tres@example.com"]]
    assert len({d.peer for d in relay.delivered}) == 1


async def test_a_connection_the_server_dropped_is_replaced(tmp_path: Path, pipelining: bool) -> None:
    relay = TestSmtpServer(tmp_path, username="caja", password="s3creta", pipelining=pipelining).start()
    mailer = _mailer(relay)
    try:
        await mailer.send(_message("antes@example.com", "before"))
        relay.restart()  # closes the idle connection the mailer keeps
        await mailer.send(_message("despues@example.com", "after"))
    finally:
        await mailer.close()
        relay.stop()
    assert [d.rcpt_tos for d in relay.delivered] == [["antes@example.com"], ["despues@example.com"]]
    assert len({d.peer for d in relay.delivered}) == 2
