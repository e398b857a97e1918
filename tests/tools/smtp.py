"""A real SMTP server on 127.0.0.1 for mail tests (aiosmtpd in its own thread).

It can require STARTTLS and a login, answer a temporary failure to the first messages, and
refuse some recipients for good, so the mailer's TLS, authentication and retries are exercised
over a real connection.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import free_port


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files: (cert, key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@dataclass(frozen=True)
class Delivered:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    tls: bool
    login: str | None
    # The client's (address, port): one per connection, so it tells reused connections apart.
    peer: tuple[str, int]


class TestSmtpServer:
    """``temporary_failures``: how many DATA commands get ``451`` before messages are accepted."""

    __test__ = False

    def __init__(
        self,
        directory: Path,
        *,
        username: str,
        password: str,
        temporary_failures: int = 0,
        refuse: Callable[[str], bool] = lambda _address: False,
        pipelining: bool = False,
    ) -> None:
        self.cert, key = self_signed(directory)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, key)
        self.delivered: list[Delivered] = []
        self.data_commands = 0
        self._lock = threading.Lock()
        self._failures_left = temporary_failures
        server = self

        def authenticate(
            _server: Any, _session: Any, _envelope: Any, _mechanism: str, data: Any
        ) -> AuthResult:
            if (
                isinstance(data, LoginPassword)
                and data.login == username.encode()
                and data.password == password.encode()
            ):
                return AuthResult(success=True, auth_data=data.login.decode())
            return AuthResult(success=False, handled=False)

        class Handler:
            async def handle_EHLO(
                self, _server: Any, session: Any, _envelope: Any, hostname: str, responses: list[str]
            ) -> list[str]:
                # aiosmtpd reads one command line at a time, so it serves pipelined commands in
                # order; it just does not say so. Saying so makes the client pipeline.
                session.host_name = hostname  # what aiosmtpd does itself when there is no hook
                return [responses[0], "250-PIPELINING", *responses[1:]] if pipelining else responses

            async def handle_RCPT(
                self, _server: Any, _session: Any, envelope: Any, address: str, _options: Any
            ) -> str:
                if refuse(address):
                    return "550 5.1.1 No such mailbox"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, _server: Any, session: Any, envelope: Any) -> str:
                with server._lock:
                    server.data_commands += 1
                    if server._failures_left > 0:
                        server._failures_left -= 1
                        return "451 4.3.0 Temporary failure, try again later"
                    server.delivered.append(
                        Delivered(
                            mail_from=envelope.mail_from,
                            rcpt_tos=list(envelope.rcpt_tos),
                            content=envelope.original_content or envelope.content,
                            tls=session.ssl is not None,
                            login=session.auth_data,
                            peer=tuple(session.peer),
                        )
                    )
                return "250 2.0.0 Queued"

        self.port = free_port()
        self._new_controller = lambda: Controller(
            Handler(),
            hostname="127.0.0.1",
            port=self.port,
            server_hostname="127.0.0.1",
            tls_context=context,
            require_starttls=True,
            auth_required=True,
            auth_require_tls=True,
            authenticator=authenticate,
        )
        self._controller = self._new_controller()

    def start(self) -> TestSmtpServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def restart(self) -> None:
        """Stop (closing every connection) and listen again on the same port."""
        self._controller.stop()
        self._controller = self._new_controller()
        self._controller.start()

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 15.0, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
            time.sleep(0.05)
