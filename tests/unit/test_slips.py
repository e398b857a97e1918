"""The payment slip's content and its PDF, without a server: wording, expiry, odd merchant names."""

from __future__ import annotations

import io

from pypdf import PdfReader

from caja.domain.slips import STEPS, Slip
from caja.domain.stores import STORE_NAMES
from caja.web.barcodes import BarcodeRenderer
from caja.web.slip_pdf import core_text, render

REFERENCE = "10001432529593700513"
NOW = 1_800_000_000


def slip(**changes: object) -> Slip:
    values: dict[str, object] = {
        "source_id": "off_ref_2abcdefghijkmnopq",
        "reference": REFERENCE,
        "merchant_name": "Abarrotes Doña Güera",
        "expires_at": 0,
        "livemode": True,
    }
    values.update(changes)
    return Slip(**values)  # type: ignore[arg-type]


def pdf_text(document: bytes) -> str:
    reader = PdfReader(io.BytesIO(document))
    assert len(reader.pages) == 1
    return reader.pages[0].extract_text()


def test_reference_is_grouped_for_dictation() -> None:
    assert slip().grouped_reference == "1000 1432 5295 9370 0513"


def test_expiry() -> None:
    assert not slip().expires and not slip().is_expired(NOW)
    expiring = slip(expires_at=NOW + 60)
    assert expiring.expires
    assert not expiring.is_expired(NOW)
    assert expiring.is_expired(NOW + 60)


def test_core_text_keeps_spanish_and_never_fails() -> None:
    assert core_text("Doña Güera, «Cómo pagar»") == "Doña Güera, «Cómo pagar»"
    assert core_text("Őrsi — “La Tienda” 🍕") == 'Orsi - "La Tienda" ?'


def test_pdf_holds_the_slip() -> None:
    png = BarcodeRenderer().png(REFERENCE)
    document = render(slip(), png)
    assert document.startswith(b"%PDF-")
    text = pdf_text(document)
    assert REFERENCE in text.replace(" ", "")
    assert "Abarrotes Doña Güera" in text
    assert "Sin fecha de vencimiento" in text
    assert "prueba" not in text
    flat = " ".join(text.split())
    for step in STEPS:
        assert " ".join(step.split()) in flat
    for name in STORE_NAMES:
        assert name in text
    reader = PdfReader(io.BytesIO(document))
    assert len(reader.pages[0].images) == 1
    assert reader.metadata is not None and reader.metadata.title == "Ficha de pago - Abarrotes Doña Güera"


def test_pdf_of_an_expiring_test_reference() -> None:
    document = render(slip(livemode=False, expires_at=1_795_000_000), BarcodeRenderer().png(REFERENCE))
    text = " ".join(pdf_text(document).split())
    assert "Referencia de prueba" in text
    assert "Válida hasta el 18 de noviembre de 2026" in text


def test_pdf_survives_names_outside_latin1() -> None:
    document = render(slip(merchant_name="店 Őrsi 🍕"), BarcodeRenderer().png(REFERENCE))
    assert "? Orsi ?" in pdf_text(document)


def test_pdf_stays_on_one_page_with_the_longest_name() -> None:
    # Accounts allow 200 characters; wide letters are the worst case.
    document = render(slip(merchant_name="W" * 200, livemode=False), BarcodeRenderer().png(REFERENCE))
    assert "W" * 40 in pdf_text(document)
