"""Payment slips against real databases, in-process: which sources have one, and the pages a
payer gets when there is none (the expired case needs the fixed clock, so it lives here)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from caja.app import create_app
from caja.bootstrap import Container
from caja.config import Settings
from caja.domain.clock import FixedClock
from caja.domain.customers import NewCustomer
from caja.domain.payment_sources import DAY, NewPaymentSource, PaymentSourceType
from caja.domain.tenancy import Tenant
from caja.services import accounts, customers, payment_sources, slips
from caja.services.accounts import KeyResolver
from caja.store.db import Database
from caja.store.uow import UnitOfWorkFactory

BASE_URL = "http://caja.test"
CASH = NewPaymentSource(PaymentSourceType.CASH_RECURRENT)


async def merchant(uow: UnitOfWorkFactory, clock: FixedClock, name: str) -> Tenant:
    issued = await accounts.create_account(uow, clock, name)
    return Tenant(account_id=issued.account.id, livemode=False)


async def customer_with(
    uow: UnitOfWorkFactory, clock: FixedClock, tenant: Tenant, *sources: NewPaymentSource
) -> tuple[str, list[str]]:
    request = NewCustomer(name="Ana López", email="ana@example.com", payment_sources=sources)
    made = await customers.create(uow, clock, tenant, request, BASE_URL)
    return made.id, [s.id for s in made.payment_sources]


@pytest.fixture
async def client(
    database: Database, uow: UnitOfWorkFactory, clock: FixedClock
) -> AsyncIterator[httpx.AsyncClient]:
    container = Container(settings=Settings(), database=database, clock=clock, uow=uow, keys=KeyResolver(uow))
    # No lifespan: slips need only the database, the clock and the barcode renderer.
    transport = httpx.ASGITransport(app=create_app(container))
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        yield client


async def test_find_only_active_cash_sources(uow: UnitOfWorkFactory, clock: FixedClock) -> None:
    tenant = await merchant(uow, clock, "Papelería La Estrella")
    customer_id, [cash_id, spei_id] = await customer_with(
        uow, clock, tenant, CASH, NewPaymentSource(PaymentSourceType.SPEI_RECURRENT)
    )
    found = await slips.find(uow, cash_id)
    assert found is not None
    assert found.merchant_name == "Papelería La Estrella"
    assert found.source_id == cash_id and len(found.reference) == 20
    assert found.livemode is False and not found.expires

    assert await slips.find(uow, spei_id) is None
    assert await slips.find(uow, "off_ref_2nosuchsource00000") is None

    await payment_sources.delete(uow, clock, tenant, customer_id, cash_id, BASE_URL)
    assert await slips.find(uow, cash_id) is None


async def test_slip_is_the_owning_merchants(uow: UnitOfWorkFactory, clock: FixedClock) -> None:
    first = await merchant(uow, clock, "Primer Comercio")
    second = await merchant(uow, clock, "Segundo Comercio")
    _, [first_source] = await customer_with(uow, clock, first, CASH)
    _, [second_source] = await customer_with(uow, clock, second, CASH)
    one, two = await slips.find(uow, first_source), await slips.find(uow, second_source)
    assert one is not None and two is not None
    assert (one.merchant_name, two.merchant_name) == ("Primer Comercio", "Segundo Comercio")


async def test_expired_reference_answers_410_until_extended(
    uow: UnitOfWorkFactory, clock: FixedClock, client: httpx.AsyncClient
) -> None:
    tenant = await merchant(uow, clock, "Comercio Vencido")
    expires_at = clock.now() + 2 * DAY
    customer_id, [source_id] = await customer_with(
        uow, clock, tenant, NewPaymentSource(PaymentSourceType.CASH_RECURRENT, expires_at=expires_at)
    )
    page = await client.get(f"/slips/{source_id}")
    assert page.status_code == 200
    assert '<time datetime="' in page.text and "Válida hasta el" in page.text

    clock.advance(2 * DAY)
    for path in (f"/slips/{source_id}", f"/slips/{source_id}.pdf"):
        gone = await client.get(path)
        assert gone.status_code == 410
        assert gone.headers["content-type"].startswith("text/html")
        assert "Esta referencia venció" in gone.text
        assert "Comercio Vencido" not in gone.text

    # The merchant extends it: the same URL shows the slip again.
    await payment_sources.update(uow, clock, tenant, customer_id, source_id, clock.now() + 30 * DAY, BASE_URL)
    assert (await client.get(f"/slips/{source_id}")).status_code == 200


async def test_pages_without_a_slip_are_html_404s(client: httpx.AsyncClient) -> None:
    for path in (
        "/slips/off_ref_2nosuchsource00000",
        "/slips/off_ref_2nosuchsource00000.pdf",
        "/slips/" + "x" * 500,
    ):
        missing = await client.get(path)
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("text/html")
        assert "No encontramos esta ficha de pago" in missing.text
    assert (await client.get("/slips/assets/nothing.css")).status_code == 404
