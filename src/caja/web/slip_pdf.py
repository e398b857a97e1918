"""The payment slip as a one-page PDF (US Letter, Mexico's usual paper), drawn with fpdf2.

It carries what the HTML slip carries (``domain/slips.py`` is the one source of the wording) and
embeds the same Code 128 PNG that ``/barcodes/{reference}.png`` serves. fpdf2 is pure Python and
its built-in Helvetica needs no font file, so Caja ships no fonts and renders offline.
"""

from __future__ import annotations

import io
import unicodedata
from typing import Final

from fpdf import FPDF
from fpdf.enums import Align, XPos, YPos

from caja.domain.mail import spanish_datetime
from caja.domain.slips import Slip

# The dashboard's palette (static/dashboard.css), as RGB.
BRAND: Final = (11, 61, 145)
INK: Final = (31, 41, 51)
MUTED: Final = (107, 114, 128)
LINE: Final = (229, 231, 235)
WARN_BG: Final = (254, 240, 199)
WARN_INK: Final = (181, 71, 8)

MARGIN: Final = 18.0
STORE_COLUMNS: Final = 3
BARCODE_WIDTH: Final = 100.0
# A long merchant name (accounts allow 200 characters) gets smaller type, and if the slip still
# runs onto a second sheet it is drawn again with a smaller barcode: a slip is one page.
LONG_NAME: Final = 40
COMPACT_BARCODE_WIDTH: Final = 70.0

# Characters the core fonts lack but whose meaning survives in plain ASCII.
_TYPOGRAPHY: Final = str.maketrans({"—": "-", "–": "-", "“": '"', "”": '"', "‘": "'", "’": "'", "…": "..."})


def core_text(text: str) -> str:
    """Text the built-in (Latin-1) fonts can draw: accents outside Latin-1 are dropped
    (``ő`` -> ``o``), anything else becomes ``?``, so a merchant's name never breaks the PDF."""
    out: list[str] = []
    for char in text.translate(_TYPOGRAPHY):
        if ord(char) < 256:
            out.append(char)
            continue
        base = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
        out.append(base if base and all(ord(c) < 256 for c in base) else "?")
    return "".join(out)


class _SlipDocument(FPDF):
    def __init__(self) -> None:
        super().__init__(orientation="portrait", unit="mm", format="letter")
        self.set_margins(MARGIN, MARGIN, MARGIN)
        self.set_auto_page_break(auto=True, margin=MARGIN)
        self.add_page()

    @property
    def inner_width(self) -> float:
        return float(self.w - 2 * MARGIN)

    def text_line(
        self, text: str, *, size: float, style: str = "", color: tuple[int, int, int] = INK
    ) -> None:
        self.set_font("Helvetica", style, size)
        self.set_text_color(*color)
        self.multi_cell(self.inner_width, size * 0.5, core_text(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def heading(self, text: str) -> None:
        self.ln(5)
        self.text_line(text.upper(), size=10, style="B", color=MUTED)
        self.set_draw_color(*LINE)
        self.line(MARGIN, self.get_y() + 1, self.w - MARGIN, self.get_y() + 1)
        self.ln(3)


def render(slip: Slip, barcode_png: bytes) -> bytes:
    pdf = _draw(slip, barcode_png, BARCODE_WIDTH)
    if pdf.pages_count > 1:
        pdf = _draw(slip, barcode_png, COMPACT_BARCODE_WIDTH)
    return bytes(pdf.output())


def _draw(slip: Slip, barcode_png: bytes, barcode_width: float) -> _SlipDocument:
    pdf = _SlipDocument()
    pdf.set_title(core_text(f"Ficha de pago - {slip.merchant_name}"))
    pdf.set_author(core_text(slip.merchant_name))
    pdf.set_creator("Caja")

    _header(pdf)
    if not slip.livemode:
        _test_mode_notice(pdf)
    _reference(pdf, slip, barcode_png, barcode_width)
    _steps(pdf, slip)
    _stores(pdf, slip)
    _notes(pdf, slip)
    return pdf


def _header(pdf: _SlipDocument) -> None:
    pdf.set_fill_color(*BRAND)
    pdf.rect(0, 0, pdf.w, 26, style="F")
    pdf.set_xy(MARGIN, 8)
    pdf.set_font("Helvetica", "B", 20)
    pdf.set_text_color(255, 255, 255)
    pdf.cell(0, 10, "Ficha de pago", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_xy(MARGIN, 18)
    pdf.set_font("Helvetica", "", 10)
    pdf.cell(0, 5, "Pago en efectivo en tiendas de conveniencia", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_y(34)


def _test_mode_notice(pdf: _SlipDocument) -> None:
    pdf.set_fill_color(*WARN_BG)
    pdf.set_text_color(*WARN_INK)
    pdf.set_font("Helvetica", "B", 10)
    pdf.multi_cell(
        pdf.inner_width,
        7,
        core_text("Referencia de prueba: no la pagues en una tienda, ningún pago llegará al comercio."),
        fill=True,
        align=Align.C,
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    pdf.ln(4)


def _reference(pdf: _SlipDocument, slip: Slip, barcode_png: bytes, barcode_width: float) -> None:
    pdf.text_line("Paga a", size=10, color=MUTED)
    pdf.text_line(slip.merchant_name, size=18 if len(slip.merchant_name) <= LONG_NAME else 12, style="B")
    pdf.ln(3)
    pdf.text_line("Referencia", size=10, color=MUTED)
    pdf.set_font("Courier", "B", 24)
    pdf.set_text_color(*INK)
    pdf.cell(0, 12, slip.grouped_reference, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(2)
    pdf.image(
        io.BytesIO(barcode_png),
        x=Align.C,
        w=barcode_width,
        alt_text=f"Código de barras de la referencia {slip.reference}",
    )
    pdf.ln(2)
    validity = (
        f"Válida hasta el {spanish_datetime(slip.expires_at)}."
        if slip.expires
        else "Sin fecha de vencimiento."
    )
    pdf.text_line(validity, size=10, color=MUTED)


def _steps(pdf: _SlipDocument, slip: Slip) -> None:
    pdf.heading("Cómo pagar")
    for number, step in enumerate(slip.steps, start=1):
        pdf.text_line(f"{number}. {step}", size=11)
        pdf.ln(1)


def _stores(pdf: _SlipDocument, slip: Slip) -> None:
    pdf.heading("Dónde pagar")
    width = pdf.inner_width / STORE_COLUMNS
    pdf.set_font("Helvetica", "", 10)
    pdf.set_text_color(*INK)
    names = slip.store_names
    for row in range(0, len(names), STORE_COLUMNS):
        for name in names[row : row + STORE_COLUMNS]:
            pdf.cell(width, 5.5, core_text(name))
        pdf.ln(5.5)
    for bank in slip.bank_agreements:
        pdf.ln(1)
        pdf.text_line(f"{bank.bank}: convenio {bank.agreement} y tu referencia.", size=10)


def _notes(pdf: _SlipDocument, slip: Slip) -> None:
    pdf.ln(4)
    for note in slip.notes:
        pdf.text_line(note, size=9, color=MUTED)
