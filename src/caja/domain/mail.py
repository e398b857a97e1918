"""E-mail as Caja sends and catches it: the outbox payload, parsing a caught message, Spanish dates.

Pure rules, no I/O. An e-mail is rendered when it is enqueued (in the caller's transaction), so
its job's payload holds exactly what will be sent: recipients, subject, a text and an HTML part,
and the template it came from. The mailer adds ``X-Caja-Job`` (the job id) to every message and
derives its ``Message-ID`` from it, so a retried send is recognisably the same message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from email import policy
from email.header import Header
from email.message import EmailMessage, Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.parser import BytesParser
from email.utils import formataddr, formatdate, getaddresses, parseaddr
from typing import Any

from caja.domain.emails import normalise_email

EMAIL_JOB_PREFIX = "eml_"
CAUGHT_EMAIL_PREFIX = "msg_"
# Names the outbox job a message was sent by; the catcher ties the message to its account by it.
JOB_HEADER = "X-Caja-Job"
MAX_RECIPIENTS = 50
MAX_SUBJECT = 500

_MONTHS = (
    "enero",
    "febrero",
    "marzo",
    "abril",
    "mayo",
    "junio",
    "julio",
    "agosto",
    "septiembre",
    "octubre",
    "noviembre",
    "diciembre",
)


def _mexico_city() -> tzinfo:
    """Central Mexico's time. Since October 2022 it keeps UTC-6 all year (no daylight saving)."""
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo("America/Mexico_City")
    except Exception:  # no time-zone database on this machine
        return timezone(timedelta(hours=-6), "CST")


MEXICO_CITY = _mexico_city()


def spanish_datetime(epoch: int, tz: tzinfo = MEXICO_CITY) -> str:
    """``1795000000`` -> ``"18 de noviembre de 2026, 02:26 (hora del centro de México)"``."""
    when = datetime.fromtimestamp(epoch, tz=UTC).astimezone(tz)
    return f"{when.day} de {_MONTHS[when.month - 1]} de {when.year}, {when:%H:%M} (hora del centro de México)"


@dataclass(frozen=True, slots=True)
class OutgoingEmail:
    """One rendered message, as an ``email`` job carries it."""

    to: tuple[str, ...]
    subject: str
    text: str
    html: str
    template: str

    def __post_init__(self) -> None:
        if not self.to:
            raise ValueError("an e-mail needs at least one recipient")
        if len(self.to) > MAX_RECIPIENTS:
            raise ValueError(f"at most {MAX_RECIPIENTS} recipients")
        for address in self.to:
            normalise_email(address)
        if "\n" in self.subject or "\r" in self.subject:
            raise ValueError("a subject is one line")

    def as_payload(self) -> dict[str, Any]:
        return {
            "to": list(self.to),
            "subject": self.subject,
            "text": self.text,
            "html": self.html,
            "template": self.template,
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> OutgoingEmail:
        to = payload.get("to")
        recipients = (to,) if isinstance(to, str) else tuple(str(a) for a in to or ())
        return cls(
            to=recipients,
            subject=str(payload.get("subject", "")),
            text=str(payload.get("text", "")),
            html=str(payload.get("html", "")),
            template=str(payload.get("template", "")),
        )


def _set_text_header(message: Message, name: str, value: str) -> None:
    """RFC 2047 encoded-words for non-ASCII text (a subject with an accent or a ✓)."""
    if value.isascii():
        message[name] = value
    else:
        # A Header object is folded correctly when flattened; an already-encoded string would be
        # folded again (a stray leading space once decoded).
        message[name] = Header(value, "utf-8", header_name=name)  # type: ignore[assignment]


def build_message(email: OutgoingEmail, *, sender: str, job_id: str, sent_at: int) -> Message:
    """The MIME message: ``multipart/alternative`` with the text part first, then the HTML.

    Built with the standard library's compat32 classes: the same MIME as ``EmailMessage``
    produces, at a third of its cost (measured ~620 µs against ~2,000 µs with flattening; the
    dispatcher sends one per payment).
    """
    message = MIMEMultipart("alternative") if email.html else MIMEText(email.text, "plain", "utf-8")
    name, address = parseaddr(sender)
    message["From"] = formataddr((name, address), charset="utf-8") if name else address
    message["To"] = ", ".join(email.to)
    _set_text_header(message, "Subject", email.subject)
    message["Date"] = formatdate(sent_at, usegmt=True)
    domain = sender.rsplit("@", 1)[-1].strip("> ") or "caja.localhost"
    # Stable across retries: a receiving system can tell a resend from a second message.
    message["Message-ID"] = f"<{job_id}@{domain}>"
    message[JOB_HEADER] = job_id
    if email.template:
        message["X-Caja-Template"] = email.template
    if email.html:
        message.attach(MIMEText(email.text, "plain", "utf-8"))
        message.attach(MIMEText(email.html, "html", "utf-8"))
    return message


@dataclass(frozen=True, slots=True)
class CaughtEmail:
    """A message the built-in catcher received, as stored (the raw message) and as shown."""

    id: str
    received_at: int
    mail_from: str  # the SMTP envelope sender
    recipients: tuple[str, ...]  # the SMTP envelope recipients
    subject: str
    message: str  # the raw RFC 5322 message
    account_id: str | None = None
    livemode: bool | None = None
    job_id: str | None = None
    parsed: ParsedMessage = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "parsed", parse_message(self.message.encode("utf-8", "replace")))


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    from_: str
    to: tuple[str, ...]
    subject: str
    text: str | None
    html: str | None
    headers: tuple[tuple[str, str], ...]
    job_id: str | None


def parse_message(raw: bytes) -> ParsedMessage:
    """The parts a person reads: sender, recipients, subject, the text and HTML bodies, headers."""
    message = BytesParser(policy=policy.default).parsebytes(raw)
    text = _body(message, "plain")
    html = _body(message, "html")
    recipients = tuple(
        address
        for _name, address in getaddresses([str(v) for k in ("to", "cc") for v in message.get_all(k) or ()])
        if address
    )
    job = message.get(JOB_HEADER)
    return ParsedMessage(
        from_=str(message.get("from", "")),
        to=recipients,
        subject=str(message.get("subject", "")),
        text=text,
        html=html,
        headers=tuple((k, str(v)) for k, v in message.items()),
        job_id=str(job).strip() if job else None,
    )


def _body(message: EmailMessage, subtype: str) -> str | None:
    try:
        part = message.get_body(preferencelist=(subtype,))
    except (KeyError, LookupError):
        return None
    if part is None or part.get_content_subtype() != subtype:
        return None
    try:
        content = part.get_content()
    except (LookupError, ValueError):
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else str(payload)
    return str(content).replace("\r\n", "\n")
