"""The payer's payment slip in chromium: it renders with Caja's own assets only (no CSP
violation), the barcode image loads, stores and steps are listed, and it prints on one page."""

from __future__ import annotations

import io
from collections.abc import Callable

import httpx
from playwright.sync_api import Page, expect
from pypdf import PdfReader

from tests.browser.conftest import cash_source
from tests.checks import CONEKTA_STORE_NAMES
from tests.conftest import AccountKeys, Server


def test_slip_renders_and_prints(
    page: Page, server: Server, new_account: Callable[[str], AccountKeys]
) -> None:
    account = new_account("Papelería «La Estrella»")
    source = cash_source(server, account.test_key)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))

    response = page.goto(source["voucher_url"])
    assert response is not None and response.status == 200
    expect(page).to_have_title("Ficha de pago · Papelería «La Estrella»")
    expect(page.locator("h1")).to_have_text("Ficha de pago")
    expect(page.locator(".merchant")).to_have_text("Papelería «La Estrella»")
    grouped = " ".join(source["reference"][i : i + 4] for i in range(0, 20, 4))
    expect(page.locator(".reference")).to_have_text(grouped)
    expect(page.locator(".test-mode")).to_be_visible()
    expect(page.locator(".validity")).to_have_text("Sin fecha de vencimiento.")

    barcode = page.locator("img.barcode")
    expect(barcode).to_be_visible()
    page.wait_for_function("document.querySelector('img.barcode').complete")
    assert barcode.evaluate("img => img.naturalWidth") > 0
    assert barcode.evaluate("img => img.naturalWidth > img.naturalHeight")

    stores = page.locator("ul.stores li")
    expect(stores).to_have_count(len(CONEKTA_STORE_NAMES))
    expect(stores).to_have_text(CONEKTA_STORE_NAMES)
    steps = page.locator("ol.steps li")
    expect(steps).to_have_count(4)
    expect(steps.first).to_contain_text("tiendas participantes")
    expect(steps.nth(1)).to_contain_text("Conekta")
    expect(steps.last).to_contain_text("comprobante")
    expect(page.locator(".agreement")).to_contain_text("2409526")

    # The stylesheet applied (the dashboard's brand blue), and the print button's script ran.
    band = page.locator(".band")
    assert band.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(11, 61, 145)"
    page.evaluate("window.print = () => { window.printed = true; }")
    page.get_by_role("button", name="Imprimir").click()
    assert page.evaluate("window.printed") is True

    pdf_link = page.get_by_role("link", name="Descargar PDF")
    assert pdf_link.get_attribute("href") == f"/slips/{source['id']}.pdf"
    served = page.request.get(f"{server.base_url}/slips/{source['id']}.pdf")
    assert served.status == 200 and served.headers["content-type"] == "application/pdf"

    # On paper: no buttons, no coloured band, and the whole slip on one Letter page.
    page.emulate_media(media="print")
    expect(page.locator(".actions")).to_be_hidden()
    assert band.evaluate("e => getComputedStyle(e).backgroundColor") == "rgba(0, 0, 0, 0)"
    printed = page.pdf(format="Letter", prefer_css_page_size=True, print_background=True)
    reader = PdfReader(io.BytesIO(printed))
    assert len(reader.pages) == 1
    text = reader.pages[0].extract_text()
    assert "Papelería «La Estrella»" in text and grouped in text and "Al Super" in text

    assert problems == []


def test_deleted_source_shows_a_404_page(
    page: Page, server: Server, new_account: Callable[[str], AccountKeys]
) -> None:
    account = new_account("Comercio Borrado")
    source = cash_source(server, account.test_key)
    with httpx.Client(
        base_url=server.base_url, headers={"Authorization": f"Bearer {account.test_key}"}
    ) as api:
        path = f"/customers/{source['customer_id']}/payment_sources/{source['id']}"
        assert api.delete(path).status_code == 200
    response = page.goto(source["voucher_url"])
    assert response is not None and response.status == 404
    expect(page.locator("h2")).to_have_text("No encontramos esta ficha de pago")
    expect(page.locator("body")).not_to_contain_text("Comercio Borrado")
    expect(page.locator("img")).to_have_count(0)
