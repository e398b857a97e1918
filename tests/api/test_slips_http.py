"""The payer's payment slip over HTTP against a real server: ``voucher_url``, the HTML page, its
PDF, the 404 pages, and that a slip shows one merchant's slip and nothing of its customer."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pypdf import PdfReader

from tests.checks import CONEKTA_STORE_NAMES
from tests.conftest import AccountKeys, Server


def cash_customer(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    body = {"name": "Ana López", "email": "ana@example.com", "payment_sources": [{"type": "cash_recurrent"}]}
    response = client.post("/customers", json={**body, **fields})
    assert response.status_code == 200, response.text
    return dict(response.json())


def cash_source(customer: dict[str, Any]) -> dict[str, Any]:
    [source] = [s for s in customer["payment_sources"]["data"] if s["type"] == "cash_recurrent"]
    return dict(source)


@pytest.fixture
def public(server: Server) -> httpx.Client:
    """No credentials: what a payer's browser has."""
    return httpx.Client(base_url=server.base_url, timeout=15.0)


@pytest.fixture
def merchant(new_account: Callable[[str], AccountKeys]) -> AccountKeys:
    return new_account("Abarrotes <Doña> Güera & Hijos")


def test_voucher_url_in_sources_customers_and_events(
    server: Server, merchant: AccountKeys, client_for: Callable[[str], httpx.Client]
) -> None:
    own = client_for(merchant.test_key)
    customer = cash_customer(own, payment_sources=[{"type": "cash_recurrent"}, {"type": "spei_recurrent"}])
    cash = cash_source(customer)
    assert cash["voucher_url"] == f"{server.base_url}/slips/{cash['id']}"
    [spei] = [s for s in customer["payment_sources"]["data"] if s["type"] == "spei_recurrent"]
    assert "voucher_url" not in spei

    listed = own.get(f"/customers/{customer['id']}/payment_sources").json()["data"]
    assert {s["id"]: s.get("voucher_url") for s in listed}[cash["id"]] == cash["voucher_url"]
    created = own.post(f"/customers/{customer['id']}/payment_sources", json={"type": "cash_recurrent"})
    assert created.json()["voucher_url"] == f"{server.base_url}/slips/{created.json()['id']}"

    events = own.get("/events", params={"type": "payment_source.created"}).json()["data"]
    voucher_urls = {e["data"]["object"].get("voucher_url") for e in events}
    assert cash["voucher_url"] in voucher_urls


def test_slip_page(
    public: httpx.Client, merchant: AccountKeys, client_for: Callable[[str], httpx.Client]
) -> None:
    source = cash_source(cash_customer(client_for(merchant.test_key)))
    page = public.get(f"/slips/{source['id']}")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    html = page.text
    grouped = " ".join(source["reference"][i : i + 4] for i in range(0, 20, 4))
    assert grouped in html and f'data-reference="{source["reference"]}"' in html
    # The merchant's name, escaped: it is the account's, and merchants choose it.
    assert "Abarrotes &lt;Doña&gt; Güera &amp; Hijos" in html and "<Doña>" not in html
    assert f'src="/barcodes/{source["reference"]}.png"' in html
    assert f'href="/slips/{source["id"]}.pdf"' in html
    for name in CONEKTA_STORE_NAMES:
        assert name.replace("'", "&#39;") in html
    assert "Cómo pagar" in html and "Sin fecha de vencimiento" in html
    assert "Referencia de prueba" in html  # a test key's reference must not be paid at a store
    # The URL is the secret: no shared caches, no Referer, no indexing; and only Caja's own assets.
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["x-robots-tag"] == "noindex, nofollow"
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "img-src 'self'" in csp and "script-src 'self'" in csp
    for asset, media in (("slip.css", "text/css"), ("slip.js", "text/javascript")):
        served = public.get(f"/slips/assets/{asset}")
        assert served.status_code == 200 and served.headers["content-type"].startswith(media)
    assert "@media print" in public.get("/slips/assets/slip.css").text
    barcode = public.get(f"/barcodes/{source['reference']}.png")
    assert barcode.status_code == 200 and barcode.headers["content-type"] == "image/png"


def test_slip_pdf(
    public: httpx.Client, merchant: AccountKeys, client_for: Callable[[str], httpx.Client]
) -> None:
    source = cash_source(cash_customer(client_for(merchant.test_key)))
    response = public.get(f"/slips/{source['id']}.pdf")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"] == (
        f'inline; filename="ficha-de-pago-{source["reference"]}.pdf"'
    )
    assert response.headers["cache-control"] == "no-store"
    reader = PdfReader(io.BytesIO(response.content))
    text = reader.pages[0].extract_text()
    assert source["reference"] in text.replace(" ", "")
    assert "Abarrotes <Doña> Güera & Hijos" in text
    assert "Cómo pagar".upper() in text and "7 Eleven" in text
    assert len(reader.pages[0].images) == 1


def test_no_slip_for_unknown_deleted_or_spei_sources(
    public: httpx.Client, merchant: AccountKeys, client_for: Callable[[str], httpx.Client]
) -> None:
    own = client_for(merchant.test_key)
    customer = cash_customer(own, payment_sources=[{"type": "cash_recurrent"}, {"type": "spei_recurrent"}])
    cash = cash_source(customer)
    [spei] = [s for s in customer["payment_sources"]["data"] if s["type"] == "spei_recurrent"]
    assert public.get(f"/slips/{cash['id']}").status_code == 200
    deleted = own.delete(f"/customers/{customer['id']}/payment_sources/{cash['id']}")
    assert deleted.status_code == 200, deleted.text

    for source_id in (
        cash["id"],
        spei["id"],
        "off_ref_2xHJayvPVd3BpmdC7",
        "cus_2xHJayvPVd3BpmdC7",
        "%00",
    ):
        for suffix in ("", ".pdf"):
            response = public.get(f"/slips/{source_id}{suffix}")
            assert response.status_code == 404, (source_id, suffix, response.status_code)
            assert response.headers["content-type"].startswith("text/html")
            assert "No encontramos esta ficha de pago" in response.text
            assert "Abarrotes" not in response.text

    # Deleting the whole customer retires its sources' slips too.
    other = cash_source(cash_customer(own))
    other_customer = own.get("/customers", params={"search": "ana@example.com"}).json()["data"]
    owner = next(c["id"] for c in other_customer if c["payment_sources"]["data"][0]["id"] == other["id"])
    assert own.delete(f"/customers/{owner}").status_code == 200
    assert public.get(f"/slips/{other['id']}").status_code == 404


def test_slips_never_show_customers_or_other_merchants(
    public: httpx.Client,
    new_account: Callable[[str], AccountKeys],
    client_for: Callable[[str], httpx.Client],
) -> None:
    first, second = new_account("Tienda Uno"), new_account("Tienda Dos")
    mine = cash_customer(
        client_for(first.test_key),
        name="Beatriz Privada",
        email="beatriz.privada@example.com",
        phone="+525511112222",
        metadata={"contrato": "secreto-123"},
    )
    theirs = cash_customer(client_for(second.test_key), name="Carlos Ajeno", email="carlos.ajeno@example.com")
    mine_source, their_source = cash_source(mine), cash_source(theirs)

    for source, merchant, other in (
        (mine_source, "Tienda Uno", "Tienda Dos"),
        (their_source, "Tienda Dos", "Tienda Uno"),
    ):
        html = public.get(f"/slips/{source['id']}").text
        pdf = PdfReader(io.BytesIO(public.get(f"/slips/{source['id']}.pdf").content)).pages[0].extract_text()
        for shown in (html, pdf):
            assert merchant in shown and other not in shown
            for private in (
                "Beatriz",
                "beatriz.privada@example.com",
                "5511112222",
                "secreto-123",
                "Carlos",
                "carlos.ajeno@example.com",
                mine["id"],
                theirs["id"],
                first.id,
                second.id,
            ):
                assert private not in shown
    # Each slip shows only its own reference.
    assert their_source["reference"] not in public.get(f"/slips/{mine_source['id']}").text
