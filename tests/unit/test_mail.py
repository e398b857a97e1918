"""E-mail rules without I/O: the message Caja builds, parsing it back, the templates, Spanish dates."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser

import pytest

from caja.domain.mail import (
    OutgoingEmail,
    TemplatedEmail,
    compose_message,
    email_from_payload,
    parse_message,
    spanish_datetime,
)
from caja.web.emails import PAYMENT_RECEIPT, TEMPLATES, TEST_MESSAGE, EmailTemplates, templated


def test_spanish_dates_are_central_mexico_time() -> None:
    # 2026-11-23 18:26:40 UTC is 12:26 in Mexico City (UTC-6, no daylight saving since 2022).
    assert spanish_datetime(1_795_458_400) == "23 de noviembre de 2026, 12:26 (hora del centro de México)"
    # 2026-06-21 00:00 UTC: still the 20th of June there, at 18:00 (not 19:00: no summer time).
    assert spanish_datetime(1_782_000_000).startswith("20 de junio de 2026, 18:00")


def test_outgoing_email_checks_recipients_and_subject() -> None:
    with pytest.raises(ValueError):
        OutgoingEmail(to=(), subject="s", text="t", html="", template="x")
    with pytest.raises(ValueError):
        OutgoingEmail(to=("no es correo",), subject="s", text="t", html="", template="x")
    with pytest.raises(ValueError):
        OutgoingEmail(
            to=("a@example.com",), subject="a\r\nBcc: b@example.com", text="t", html="", template="x"
        )
    email = OutgoingEmail(to=("a@example.com",), subject="Hola", text="t", html="<p>h</p>", template="x")
    assert OutgoingEmail.from_payload(email.as_payload()) == email


def test_an_email_job_carries_a_template_and_its_values_or_an_older_rendered_message() -> None:
    email = templated(TEST_MESSAGE, ["a@example.com"], {"merchant_name": "Tienda", "sent_at": 1_795_000_000})
    payload = email.as_payload()
    assert payload == {
        "to": ["a@example.com"],
        "template": "prueba",
        "context": {"merchant_name": "Tienda", "sent_at": 1_795_000_000},
    }
    assert email_from_payload(payload) == email
    rendered = EmailTemplates().render_email(email)
    assert rendered.to == ("a@example.com",) and rendered.template == "prueba"
    assert "Tienda" in rendered.subject
    assert EmailTemplates().render_email(email) == rendered  # every attempt sends the same message
    older = OutgoingEmail(to=("a@example.com",), subject="Hola", text="t", html="", template="x")
    assert email_from_payload(older.as_payload()) == older
    with pytest.raises(ValueError, match="no e-mail template"):
        templated("no_existe", ["a@example.com"], {})
    with pytest.raises(ValueError):
        templated(TEST_MESSAGE, ["no es correo"], {})
    with pytest.raises(ValueError):
        TemplatedEmail(to=(), template="prueba", context={})
    with pytest.raises(ValueError, match="values"):
        email_from_payload({"to": ["a@example.com"], "template": "prueba", "context": None})


def test_message_round_trip() -> None:
    email = OutgoingEmail(
        to=("ana@example.com", "luis@example.com"), subject="Pago exitoso ✓", text="Hola, Ana\n",
        html="<p>Hola, <b>Ana</b></p>", template="pago_exitoso",
    )  # fmt: skip
    message = compose_message(
        email, sender="Tienda <pagos@tienda.mx>", job_id="eml_2abc", sent_at=1_795_000_000
    )
    assert message.recipients == ("ana@example.com", "luis@example.com")
    headers = dict(message.headers)
    assert headers["Message-ID"] == "<eml_2abc@tienda.mx>"
    assert headers["Subject"] == "Pago exitoso ✓"
    assert headers["Content-Type"].startswith("multipart/alternative; boundary=")
    standard = BytesParser(policy=policy.default).parsebytes(message.data)
    assert standard.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in standard.iter_parts()] == ["text/plain", "text/html"]
    assert standard["Message-ID"] == "<eml_2abc@tienda.mx>"
    assert standard["Date"].datetime.timestamp() == 1_795_000_000
    assert not standard.defects and all(not p.defects for p in standard.iter_parts())
    parsed = parse_message(message.data)
    assert parsed.subject == "Pago exitoso ✓"
    assert parsed.to == ("ana@example.com", "luis@example.com")
    assert parsed.from_ == "Tienda <pagos@tienda.mx>"
    assert parsed.text == "Hola, Ana\n"
    assert parsed.html is not None and "<b>Ana</b>" in parsed.html
    assert parsed.job_id == "eml_2abc"


def test_templates_escape_html_but_not_text() -> None:
    rendered = EmailTemplates().render(
        PAYMENT_RECEIPT,
        ["a@example.com"],
        {
            "merchant_name": "<script>Tienda</script>",
            "amount": 5,
            "reference": "10001432529593700513",
            "store": "OXXO & Co",
            "paid_at": 1_795_000_000,
            "authorization_code": "X1",
            "customer_name": None,
            "order_id": None,
        },
    )
    assert "$0.05 MXN" in rendered.subject
    assert "<script>" not in rendered.html and "&lt;script&gt;" in rendered.html
    assert "OXXO &amp; Co" in rendered.html and "OXXO & Co" in rendered.text
    assert "Hola" not in rendered.text  # no customer name, no greeting


def test_every_template_renders() -> None:
    assert set(TEMPLATES) == {"pago_exitoso", "retiro_referencia", "prueba"}
    with pytest.raises(ValueError):
        EmailTemplates().render("nope", ["a@example.com"], {})


def test_a_long_accented_subject_and_sender_name_round_trip() -> None:
    subject = "Tu referencia para retirar $500.00 MXN de Nómina Express — válida 30 días ✓"
    email = OutgoingEmail(to=("ana@example.com",), subject=subject, text="Hola\n", html="", template="x")
    message = compose_message(
        email, sender="Tienda Peña <pagos@tienda.mx>", job_id="eml_2x", sent_at=1_795_000_000
    )
    parsed = parse_message(message.data)
    assert parsed.subject == subject
    assert parsed.from_ == "Tienda Peña <pagos@tienda.mx>"
    assert parsed.text == "Hola\n" and parsed.html is None


def wire_lines(data: bytes) -> list[bytes]:
    assert b"\n" not in data.replace(b"\r\n", b""), "every line ends in CRLF"
    assert data.isascii(), "7-bit: no 8BITMIME or SMTPUTF8 needed"
    return data.split(b"\r\n")


def test_what_goes_on_the_wire_is_short_crlf_lines_that_the_standard_library_reads_back() -> None:
    """Fifty recipients and a long accented subject: every line is at most 78 characters and
    the standard library's parser gets back every recipient, the subject and both bodies."""
    recipients = tuple(f"cliente.numero{n}@ejemplo-de-correo.com.mx" for n in range(50))
    subject = (
        "Pago exitoso: $1,234,567.89 MXN a Distribuidora Nacional de Abarrotes del Bajío, S.A. de C.V. ✓"
    )
    text = "Hola\n" + "línea de texto con acentos: áéíóú ñ\n" * 200
    html = "<p>" + "párrafo " * 800 + "</p>"
    email = OutgoingEmail(to=recipients, subject=subject, text=text, html=html, template="pago_exitoso")
    message = compose_message(email, sender="Caja <no-reply@caja.test>", job_id="eml_2y", sent_at=0)
    assert max(len(line) for line in wire_lines(message.data)) <= 78
    standard = BytesParser(policy=policy.default).parsebytes(message.data)
    assert not standard.defects
    assert tuple(a.addr_spec for a in standard["To"].addresses) == recipients
    assert standard["Subject"] == subject
    parsed = parse_message(message.data)
    assert parsed.text == text and parsed.html == html
    assert parsed.to == recipients and parsed.subject == subject


def test_a_text_only_message_is_a_single_part() -> None:
    email = OutgoingEmail(to=("ana@example.com",), subject="Prueba", text="Sólo\n", html="", template="")
    message = compose_message(email, sender="no-reply@caja.test", job_id="eml_2z", sent_at=1_795_000_000)
    standard = BytesParser(policy=policy.default).parsebytes(message.data)
    assert standard.get_content_type() == "text/plain" and not standard.is_multipart()
    assert standard.get_content() == "Sólo\n"
    assert standard["From"] == "no-reply@caja.test" and "X-Caja-Template" not in standard
    assert max(len(line) for line in wire_lines(message.data)) <= 78


def test_each_message_has_its_own_boundary() -> None:
    email = OutgoingEmail(to=("a@example.com",), subject="s", text="t", html="<p>h</p>", template="x")
    first, second = (
        dict(compose_message(email, sender="a@caja.test", job_id="eml_1", sent_at=0).headers)["Content-Type"]
        for _ in range(2)
    )
    assert first != second
