"""Caja's SMTP client against a strict scripted server on loopback.

The server checks what aiosmtpd cannot show: that a client told PIPELINING really writes MAIL,
RCPT and DATA without waiting (the server answers none of them until DATA has arrived, so a
client that waited would time out), and that a client not told so never sends a command before
the reply to the one before it. It also speaks the AUTH mechanisms aiosmtpd does not offer
(CRAM-MD5, LOGIN alone, the old ``AUTH=`` form) and implicit TLS.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from caja.delivery.smtp_client import RecipientsRefused, SmtpConnection, SmtpError
from tests.tools.smtp import self_signed

USER, PASSWORD = "caja", "s3creta"
CHALLENGE = b"<1896.697170952@postoffice.example.net>"


@dataclass
class Script:
    """What the server offers and what it saw."""

    pipelining: bool
    auth_line: str = "AUTH PLAIN LOGIN"
    messages: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)


class _Session(asyncio.Protocol):
    def __init__(self, script: Script) -> None:
        self.script = script
        self.buffer = b""
        self.in_data = False
        self.auth_step: str | None = None
        self.login_user = ""
        self.held: list[bytes] = []
        self.mail_from = ""
        self.rcpt: list[str] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.transport.write(b"220 scripted ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            if self.in_data:
                end = self.buffer.find(b"\r\n.\r\n")
                if end < 0:
                    return
                body, self.buffer = self.buffer[: end + 2], self.buffer[end + 5 :]
                self.in_data = False
                self.script.messages.append((self.mail_from, self.rcpt, body))
                self.transport.write(b"250 2.0.0 queued\r\n")
                continue
            line, sep, rest = self.buffer.partition(b"\r\n")
            if not sep:
                return
            self.buffer = rest
            if not self.script.pipelining and b"\r\n" in rest:
                self.script.violations.append(f"{line!r} came with the next command")
            self._command(line.decode())

    def _reply(self, line: str, *, hold: bool = False) -> None:
        # Offering PIPELINING, hold the replies to MAIL and RCPT until DATA is in.
        if hold and self.script.pipelining:
            self.held.append(f"{line}\r\n".encode())
            return
        self.transport.write(b"".join(self.held) + f"{line}\r\n".encode())
        self.held = []

    def _command(self, line: str) -> None:
        if self.auth_step is not None:
            self._auth(line)
            return
        verb, _, arg = line.partition(" ")
        verb = verb.upper()
        if verb == "EHLO":
            offered = ["PIPELINING"] if self.script.pipelining else []
            lines = ["scripted", *offered, self.script.auth_line, "HELP"]
            last = len(lines) - 1
            reply = "".join(f"250{'-' if i < last else ' '}{x}\r\n" for i, x in enumerate(lines))
            self.transport.write(reply.encode())
        elif verb == "AUTH":
            mechanism, _, token = arg.partition(" ")
            if mechanism == "PLAIN":
                _, user, password = base64.b64decode(token).decode().split("\0")
                self._logged_in(user, password)
            elif mechanism == "LOGIN":
                self.auth_step = "login-user"
                self._reply("334 VXNlcm5hbWU6")
            elif mechanism == "CRAM-MD5":
                self.auth_step = "cram"
                self._reply("334 " + base64.b64encode(CHALLENGE).decode())
        elif verb == "MAIL":
            self.mail_from, self.rcpt = arg.removeprefix("FROM:<").split(">")[0], []
            self._reply("250 2.1.0 ok", hold=True)
        elif verb == "RCPT":
            address = arg.removeprefix("TO:<").rstrip(">")
            if address.startswith("rechazado"):
                self._reply("550 5.1.1 no such mailbox", hold=True)
            else:
                self.rcpt.append(address)
                self._reply("250 2.1.5 ok", hold=True)
        elif verb == "DATA":
            if self.rcpt:
                self.in_data = True
                self._reply("354 go ahead")
            else:
                self._reply("554 5.5.1 no valid recipients")
        elif verb == "RSET":
            self._reply("250 2.0.0 reset")
        elif verb == "QUIT":
            self._reply("221 2.0.0 bye")
            self.transport.close()
        else:
            self._reply("502 5.5.2 not implemented")

    def _auth(self, line: str) -> None:
        step, self.auth_step = self.auth_step, None
        if step == "login-user":
            self.login_user = base64.b64decode(line).decode()
            self.auth_step = "login-password"
            self._reply("334 UGFzc3dvcmQ6")
        elif step == "login-password":
            self._logged_in(self.login_user, base64.b64decode(line).decode())
        elif step == "cram":
            user, _, digest = base64.b64decode(line).decode().partition(" ")
            expected = hmac.new(PASSWORD.encode(), CHALLENGE, hashlib.md5).hexdigest()
            self._logged_in(user, PASSWORD if hmac.compare_digest(digest, expected) else "")

    def _logged_in(self, user: str, password: str) -> None:
        if (user, password) == (USER, PASSWORD):
            self.script.logins.append(user)
            self._reply("235 2.7.0 authenticated")
        else:
            self._reply("535 5.7.8 bad credentials")


async def _serve(script: Script, tls: ssl.SSLContext | None = None) -> tuple[asyncio.Server, int]:
    server = await asyncio.get_running_loop().create_server(lambda: _Session(script), "127.0.0.1", 0, ssl=tls)
    return server, server.sockets[0].getsockname()[1]


async def _open(port: int, **options: Any) -> SmtpConnection:
    return await SmtpConnection.open(
        "127.0.0.1", port, reply_seconds=3.0, local_hostname="caja.test", **options
    )


MESSAGE = b"Subject: prueba\r\n\r\n.una linea que empieza con punto\r\nfin\r\n"


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "one-at-a-time"])
async def test_a_message_goes_through_pipelined_or_not(pipelining: bool) -> None:
    script = Script(pipelining=pipelining)
    server, port = await _serve(script)
    try:
        connection = await _open(port)
        assert connection.supports("pipelining") is pipelining
        for n in range(3):
            reply, refused = await connection.send("pagos@caja.test", [f"cliente{n}@example.com"], MESSAGE)
            assert reply.code == 250 and refused == {}
        await connection.quit()
    finally:
        server.close()
    assert script.violations == []
    assert [(m[0], m[1]) for m in script.messages] == [
        ("pagos@caja.test", [f"cliente{n}@example.com"]) for n in range(3)
    ]
    # Dot-stuffed on the wire (RFC 5321 4.5.2): the server sees the doubled dot.
    assert script.messages[0][2] == b"Subject: prueba\r\n\r\n..una linea que empieza con punto\r\nfin\r\n"


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "one-at-a-time"])
async def test_refused_recipients(pipelining: bool) -> None:
    script = Script(pipelining=pipelining)
    server, port = await _serve(script)
    try:
        connection = await _open(port)
        reply, refused = await connection.send(
            "pagos@caja.test", ["rechazado@example.com", "si@example.com"], MESSAGE
        )
        assert reply.code == 250
        assert {a: r.code for a, r in refused.items()} == {"rechazado@example.com": 550}
        with pytest.raises(RecipientsRefused) as none_accepted:
            await connection.send("pagos@caja.test", ["rechazado@example.com"], MESSAGE)
        assert {r.code for r in none_accepted.value.refused.values()} == {550}
        await connection.reset()
        await connection.send("pagos@caja.test", ["otro@example.com"], MESSAGE)
    finally:
        server.close()
    assert script.violations == []
    assert [m[1] for m in script.messages] == [["si@example.com"], ["otro@example.com"]]


async def test_no_recipient_or_a_broken_address_is_refused_before_anything_is_sent() -> None:
    script = Script(pipelining=True)
    server, port = await _serve(script)
    try:
        connection = await _open(port)
        with pytest.raises(SmtpError, match="at least one recipient") as empty:
            await connection.send("pagos@caja.test", [], MESSAGE)
        assert empty.value.permanent
        for address in ("a@x.mx>\r\nRCPT TO:<otro@example.com", "a@x.mx\nDATA"):
            with pytest.raises(SmtpError, match="not a usable e-mail address") as injected:
                await connection.send("pagos@caja.test", [address], MESSAGE)
            assert injected.value.permanent
        await connection.send("pagos@caja.test", ["cliente@example.com"], MESSAGE)
    finally:
        server.close()
    assert [m[1] for m in script.messages] == [["cliente@example.com"]]


@pytest.mark.parametrize("auth_line", ["AUTH LOGIN", "AUTH=LOGIN", "AUTH CRAM-MD5", "AUTH PLAIN"])
async def test_each_auth_mechanism_logs_in(auth_line: str) -> None:
    script = Script(pipelining=True, auth_line=auth_line)
    server, port = await _serve(script)
    try:
        connection = await _open(port, username=USER, password=PASSWORD)
        await connection.send("pagos@caja.test", ["cliente@example.com"], MESSAGE)
        await connection.quit()
        with pytest.raises(SmtpError, match="535"):
            await _open(port, username=USER, password="otra")
    finally:
        server.close()
    assert script.logins == [USER]
    assert len(script.messages) == 1


async def test_no_auth_mechanism_in_common_is_an_error() -> None:
    server, port = await _serve(Script(pipelining=True, auth_line="AUTH XOAUTH2"))
    try:
        with pytest.raises(SmtpError, match="no AUTH mechanism in common"):
            await _open(port, username=USER, password=PASSWORD)
    finally:
        server.close()


async def test_implicit_tls(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(cert, key)
    script = Script(pipelining=True)
    server, port = await _serve(script, tls=server_side)
    try:
        connection = await _open(
            port, tls=ssl.create_default_context(cafile=str(cert)), username=USER, password=PASSWORD
        )
        await connection.send("pagos@caja.test", ["cliente@example.com"], MESSAGE)
        await connection.quit()
        with pytest.raises(ssl.SSLError):  # a server it cannot verify
            await _open(port, tls=ssl.create_default_context())
    finally:
        server.close()
    assert script.logins == [USER] and len(script.messages) == 1


async def test_starttls_not_offered_is_an_error(tmp_path: Path) -> None:
    server, port = await _serve(Script(pipelining=True))
    try:
        with pytest.raises(SmtpError, match="does not offer STARTTLS"):
            await _open(port, starttls=ssl.create_default_context())
    finally:
        server.close()


async def test_a_server_that_goes_silent_times_out() -> None:
    async def silent(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 hello\r\n")
        await asyncio.sleep(30)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(TimeoutError):
            await SmtpConnection.open("127.0.0.1", port, reply_seconds=0.3, local_hostname="caja.test")
    finally:
        server.close()
