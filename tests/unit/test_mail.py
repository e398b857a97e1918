"""E-mail rules without I/O: the message Caja builds, parsing it back, the templates, Spanish dates."""

from __future__ import annotations

import pytest

from caja.domain.mail import OutgoingEmail, build_message, parse_message, spanish_datetime
from caja.web.emails import PAYMENT_RECEIPT, TEMPLATES, EmailTemplates


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


def test_message_round_trip() -> None:
    email = OutgoingEmail(
        to=("ana@example.com", "luis@example.com"), subject="Pago exitoso ✓", text="Hola, Ana\n",
        html="<p>Hola, <b>Ana</b></p>", template="pago_exitoso",
    )  # fmt: skip
    message = build_message(
        email, sender="Tienda <pagos@tienda.mx>", job_id="eml_2abc", sent_at=1_795_000_000
    )
    assert message["Message-ID"] == "<eml_2abc@tienda.mx>"
    assert message.get_content_type() == "multipart/alternative"
    parsed = parse_message(message.as_bytes())
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
    message = build_message(
        email, sender="Tienda Peña <pagos@tienda.mx>", job_id="eml_2x", sent_at=1_795_000_000
    )
    parsed = parse_message(message.as_bytes())
    assert parsed.subject == subject
    assert parsed.from_ == "Tienda Peña <pagos@tienda.mx>"
    assert parsed.text == "Hola\n" and parsed.html is None
