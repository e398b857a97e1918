"""E-mail end to end: enqueued in a unit of work, sent by the server's dispatcher over real SMTP,
received by the built-in catcher (or a real STARTTLS + AUTH server), read back over HTTP."""

from __future__ import annotations

import secrets
import smtplib
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from email import message_from_bytes, policy
from typing import Any, TypeVar

import httpx
import pytest

from caja.domain import ids
from caja.domain.jobs import Attempt, Job
from caja.domain.mail import EMAIL_JOB_PREFIX, OutgoingEmail, TemplatedEmail
from caja.domain.tenancy import Tenant
from caja.services import emails
from caja.services.accounts import KeyResolver
from caja.store.db import Database
from caja.store.jobs import NewJob
from caja.store.uow import UnitOfWork, UnitOfWorkFactory
from caja.web.emails import TEST_MESSAGE, templated
from tests.checks import assert_error_envelope
from tests.conftest import BACKENDS, AccountKeys, Server
from tests.mail.conftest import run_async, wait_for_email
from tests.tools.smtp import TestSmtpServer

PAID_AT = 1_795_000_000
MEXICO = timezone(timedelta(hours=-6))  # central Mexico keeps UTC-6 all year since 2022
MONTHS = ["enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre",
          "octubre", "noviembre", "diciembre"]  # fmt: skip


def spanish_date(epoch: int) -> str:
    when = datetime.fromtimestamp(epoch, UTC).astimezone(MEXICO)
    return f"{when.day} de {MONTHS[when.month - 1]} de {when.year}, {when:%H:%M}"


def unique_address(name: str) -> str:
    return f"{name}-{secrets.token_hex(4)}@example.com"


async def job_and_attempts(database_url: str, job_id: str) -> tuple[Job | None, list[Attempt]]:
    database = Database(database_url)
    try:
        async with UnitOfWorkFactory(database)() as tx:
            return await tx.jobs.get(job_id), await tx.jobs.attempts(job_id)
    finally:
        await database.dispose()


T = TypeVar("T")


def in_unit(server: Server, work: Callable[[UnitOfWork, Tenant], Awaitable[T]]) -> T:
    """Run ``work`` in one write unit of work on the server's database, as its sandbox tenant."""

    async def run() -> T:
        database = Database(server.database_url)
        try:
            uow = UnitOfWorkFactory(database)
            tenant = await KeyResolver(uow).tenant(server.api_key)
            async with uow(write=True) as tx:
                return await work(tx, tenant)
        finally:
            await database.dispose()

    return run_async(run())


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _relay_env(relay: TestSmtpServer, **extra: str) -> dict[str, str]:
    return {
        "CAJA_SMTP_HOST": "127.0.0.1",
        "CAJA_SMTP_PORT": str(relay.port),
        "CAJA_SMTP_SECURITY": "starttls",
        "CAJA_SMTP_USERNAME": "caja",
        "CAJA_SMTP_PASSWORD": "s3creta",
        "CAJA_SMTP_CA_FILE": str(relay.cert),
        **extra,
    }


def _receipt(to: str, amount: int = 10_000, authorization_code: str = "12345678") -> emails.PaymentReceipt:
    return emails.PaymentReceipt(
        to=to,
        merchant_name="Tacos & Más",
        amount=amount,
        reference="10001432529593700513",
        store="7 Eleven",
        paid_at=PAID_AT,
        authorization_code=authorization_code,
        customer_name="Ana López",
        order_id="ord_2tXWZQ3vR6jS9kLm1",
    )


# --- the round trip through the built-in catcher -----------------------------------------------


def test_payment_receipt_goes_out_through_the_outbox_and_is_caught(
    server: Server, http: httpx.Client
) -> None:
    to = unique_address("pagador")
    receipt = _receipt(to, amount=123456, authorization_code="A1B2C3")
    job_id = in_unit(server, lambda tx, tenant: emails.enqueue_payment_receipt(tx, tenant, now_ms(), receipt))

    [caught] = wait_for_email(http, to)
    assert caught["object"] == "caught_email"
    assert caught["to"] == [to]
    assert caught["from"] == "Caja <no-reply@caja.localhost>"
    assert caught["subject"] == "Pago exitoso: $1,234.56 MXN a Tacos & Más"
    assert caught["job_id"] == job_id
    assert caught["livemode"] is False
    assert abs(caught["received_at"] - time.time()) < 60
    text, html = caught["text"], caught["html"]
    for part in (text, html):
        assert "$1,234.56 MXN" in part
        assert "10001432529593700513" in part
        assert "7 Eleven" in part
        assert "A1B2C3" in part
        assert spanish_date(PAID_AT) in part
        assert "Ana López" in part
        assert "ord_2tXWZQ3vR6jS9kLm1" in part
    assert "¡Pago exitoso!" in text and "Tacos & Más" in text
    assert "<h1" in html and "Tacos &amp; Más" in html and "Tacos & Más" not in html

    detail = http.get(f"/_caja/emails/{caught['id']}")
    assert detail.status_code == 200, detail.text
    full = detail.json()
    assert {k: full[k] for k in caught} == caught
    headers = {h["name"].lower(): h["value"] for h in full["headers"]}
    assert headers["x-caja-job"] == job_id
    assert headers["content-type"].startswith("multipart/alternative")
    assert headers["message-id"] == f"<{job_id}@caja.localhost>"

    raw = http.get(f"/_caja/emails/{caught['id']}/raw")
    assert raw.status_code == 200 and raw.headers["content-type"].startswith("message/rfc822")
    parsed = message_from_bytes(raw.content, policy=policy.default)
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]

    job, attempts = _wait_job(server.database_url, job_id, "succeeded")
    assert job.kind == "email" and job.livemode is False
    # The job holds the template and its values; the dispatcher rendered the message when it sent it.
    assert job.payload == {
        "to": [to],
        "template": "pago_exitoso",
        "context": {
            "merchant_name": "Tacos & Más",
            "amount": 123456,
            "reference": "10001432529593700513",
            "store": "7 Eleven",
            "paid_at": PAID_AT,
            "authorization_code": "A1B2C3",
            "customer_name": "Ana López",
            "order_id": "ord_2tXWZQ3vR6jS9kLm1",
        },
    }
    [attempt] = attempts
    assert attempt.url == f"smtp://127.0.0.1:{server.mail_port}"
    assert attempt.error is None
    assert attempt.response_body is not None and caught["id"] in attempt.response_body
    assert attempt.request_headers is not None and attempt.request_headers["To"] == to


def test_withdrawal_reference_email(server: Server, http: httpx.Client) -> None:
    to = unique_address("beneficiario")
    notice = emails.WithdrawalNotice(
        to=to,
        merchant_name="Nómina Express",
        amount=50000,
        reference="1025292250000330",
        expires_at=PAID_AT + 3 * 86400,
        beneficiary_name="Luis Pérez",
        payout_order_id="9f1c0b52-3a6e-4d8e-9a0b-2b8c1d6e7f10",
        store_names=("7 Eleven", "Soriana"),
    )
    in_unit(server, lambda tx, tenant: emails.enqueue_withdrawal_reference(tx, tenant, now_ms(), notice))
    [caught] = wait_for_email(http, to)
    assert caught["subject"] == "Tu referencia para retirar $500.00 MXN de Nómina Express"
    for part in (caught["text"], caught["html"]):
        assert "1025292250000330" in part
        assert "$500.00 MXN" in part
        assert spanish_date(PAID_AT + 3 * 86400) in part
        assert "Luis Pérez" in part
        assert "7 Eleven, Soriana" in part
        assert "identificación oficial" in part
        assert "No compartas esta referencia" in part


def test_a_rolled_back_unit_sends_nothing(server: Server, http: httpx.Client) -> None:
    lost, kept = unique_address("nunca"), unique_address("siempre")

    class Boom(Exception):
        pass

    async def enqueue_then_fail(tx: UnitOfWork, tenant: Tenant) -> None:
        await emails.enqueue(tx, tenant, now_ms(), _test_email(lost))
        raise Boom

    with pytest.raises(Boom):
        in_unit(server, enqueue_then_fail)
    in_unit(server, lambda tx, tenant: emails.enqueue(tx, tenant, now_ms(), _test_email(kept)))
    wait_for_email(http, kept)
    # Jobs run oldest first: had the first one committed, it would have been caught by now.
    time.sleep(0.3)
    assert http.get("/_caja/emails", params={"search": lost}).json()["data"] == []


def _test_email(to: str) -> TemplatedEmail:
    return templated(TEST_MESSAGE, [to], {"merchant_name": "Sandbox", "sent_at": PAID_AT})


def test_a_job_holding_a_rendered_message_is_sent_as_it_is(server: Server, http: httpx.Client) -> None:
    """Jobs enqueued by earlier versions carry the rendered message, not a template: sent unchanged."""
    to = unique_address("anterior")
    rendered = OutgoingEmail(
        to=(to,), subject="Mensaje ya escrito", text="Texto fijo\n", html="<p>HTML fijo</p>", template="x"
    )

    async def enqueue_rendered(tx: UnitOfWork, tenant: Tenant) -> str:
        job = NewJob(
            id=ids.new_id(EMAIL_JOB_PREFIX),
            kind="email",
            account_id=tenant.account_id,
            livemode=tenant.livemode,
            payload=rendered.as_payload(),
            run_at=now_ms(),
            created_at=now_ms(),
        )
        await tx.jobs.enqueue(job)
        return job.id

    job_id = in_unit(server, enqueue_rendered)
    [caught] = wait_for_email(http, to)
    assert caught["job_id"] == job_id and caught["subject"] == "Mensaje ya escrito"
    assert caught["text"].strip() == "Texto fijo" and "<p>HTML fijo</p>" in caught["html"]


def test_a_job_whose_template_cannot_render_fails_at_once(server: Server) -> None:
    """A template's missing value cannot appear on a retry: the job fails on its first attempt."""
    to = unique_address("incompleto")
    incomplete = TemplatedEmail(to=(to,), template=TEST_MESSAGE, context={"merchant_name": "Sin fecha"})
    job_id = in_unit(server, lambda tx, tenant: emails.enqueue(tx, tenant, now_ms(), incomplete))
    job, attempts = _wait_job(server.database_url, job_id, "failed")
    assert job.attempts == 1
    [attempt] = attempts
    assert attempt.error is not None and "cannot be sent" in attempt.error and "sent_at" in attempt.error


def test_send_test_email_over_http(http: httpx.Client) -> None:
    to = unique_address("prueba")
    sent = http.post("/_caja/emails", json={"to": to})
    assert sent.status_code == 200, sent.text
    job = sent.json()
    assert job["object"] == "email_job" and job["id"].startswith("eml_") and job["status"] == "pending"
    assert job["to"] == [to] and job["template"] == TEST_MESSAGE and job["attempts"] == 0
    assert job["caught_email_id"] is None and job["finished_at"] is None and job["livemode"] is False
    assert isinstance(job["created_at"], int) and job["next_attempt_at"] == job["created_at"]
    [caught] = wait_for_email(http, to)
    assert caught["job_id"] == job["id"]
    assert caught["subject"] == "Correo de prueba de Sandbox"
    assert "el envío de correos funciona" in caught["text"]
    assert "el envío de correos funciona" in caught["html"]

    # The job, read again, says it went out and which caught message it became.
    followed = wait_for_job(http, job["id"], "sent")
    assert followed["caught_email_id"] == caught["id"] and followed["attempts"] == 1
    assert followed["next_attempt_at"] is None and followed["last_error"] is None
    assert followed["finished_at"] >= followed["created_at"] and followed["last_attempted_at"] is not None
    assert http.get(f"/_caja/emails/{followed['caught_email_id']}").json()["id"] == caught["id"]


def wait_for_job(client: httpx.Client, job_id: str, status: str, timeout: float = 20.0) -> dict[str, Any]:
    """``GET /_caja/email_jobs/{id}`` until the job reaches ``status``."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/_caja/email_jobs/{job_id}")
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        assert job["object"] == "email_job" and job["id"] == job_id
        if job["status"] == status:
            return job
        assert time.monotonic() < deadline, f"job {job_id} is {job['status']}, not {status}: {job}"
        time.sleep(0.1)


def test_email_jobs_are_their_own_accounts(own: httpx.Client, http: httpx.Client) -> None:
    job_id = own.post("/_caja/emails", json={"to": unique_address("ajeno")}).json()["id"]
    assert own.get(f"/_caja/email_jobs/{job_id}").status_code == 200
    for response in (http.get(f"/_caja/email_jobs/{job_id}"), own.get("/_caja/email_jobs/eml_2nope")):
        assert response.status_code == 404, response.text
        body = response.json()
        assert_error_envelope(body)
        assert body["details"][0]["code"] == "conekta.errors.resource_not_found.entity"


def test_send_test_email_validation(http: httpx.Client) -> None:
    bad = http.post("/_caja/emails", json={"to": "no es correo"})
    assert bad.status_code == 422, bad.text
    assert bad.json()["details"][0]["param"] == "to"
    unknown = http.post("/_caja/emails", json={"to": "a@example.com", "cc": "b@example.com"})
    assert unknown.status_code == 422
    assert unknown.json()["details"][0]["code"] == "conekta.errors.parameter_validation.cc.unknown"


# --- who may read what ------------------------------------------------------------------------


def test_live_keys_are_refused(
    new_account: Callable[[str], AccountKeys], client_for: Callable[[str], httpx.Client]
) -> None:
    live = client_for(new_account("Comercio en vivo").live_key)
    for response in (
        live.get("/_caja/emails"),
        live.get("/_caja/emails/msg_2abc"),
        live.post("/_caja/emails", json={"to": "a@example.com"}),
        live.get("/_caja/email_jobs/eml_2abc"),
    ):
        assert response.status_code == 403, response.text
        body = response.json()
        assert_error_envelope(body)
        assert body["type"] == "authentication_error"
        assert body["details"][0]["code"] == "conekta.errors.authentication.test_key_required"
    anonymous = httpx.get(f"{live.base_url}/_caja/emails")
    assert anonymous.status_code == 401


def test_each_account_sees_only_its_messages(server: Server, own: httpx.Client, http: httpx.Client) -> None:
    mine = unique_address("propio")
    assert own.post("/_caja/emails", json={"to": mine}).status_code == 200
    [caught] = wait_for_email(own, mine)
    assert http.get("/_caja/emails", params={"search": mine}).json()["data"] == []
    assert http.get(f"/_caja/emails/{caught['id']}").status_code == 404

    # A message from anywhere else (no X-Caja-Job naming a job of Caja's) belongs to the sandbox.
    outsider = unique_address("externo")
    with smtplib.SMTP("127.0.0.1", server.mail_port, timeout=10) as smtp:
        smtp.sendmail(
            "app@example.com",
            [outsider],
            f"From: app@example.com\r\nTo: {outsider}\r\nSubject: Hola\r\n\r\nDesde fuera.\r\n",
        )
    [foreign] = wait_for_email(http, outsider)
    assert foreign["job_id"] is None and foreign["text"] == "Desde fuera.\n" and foreign["html"] is None
    assert own.get("/_caja/emails", params={"search": outsider}).json()["data"] == []
    assert own.get(f"/_caja/emails/{foreign['id']}").status_code == 404
    # A forged header naming no e-mail job of Caja's changes nothing.
    forged = unique_address("falso")
    with smtplib.SMTP("127.0.0.1", server.mail_port, timeout=10) as smtp:
        smtp.sendmail(
            "x@example.com",
            [forged],
            f"From: x@example.com\r\nTo: {forged}\r\nX-Caja-Job: eml_2nope\r\nSubject: x\r\n\r\nx\r\n",
        )
    [caught_forged] = wait_for_email(http, forged)
    assert caught_forged["job_id"] is None


def test_paging_newest_first(own: httpx.Client) -> None:
    sent = [unique_address(f"pagina{i}") for i in range(3)]
    for to in sent:
        assert own.post("/_caja/emails", json={"to": to}).status_code == 200
        wait_for_email(own, to)
    first = own.get("/_caja/emails", params={"limit": "2"}).json()
    assert [e["to"][0] for e in first["data"]] == [sent[2], sent[1]]
    assert first["has_more"] is True and first["previous_page_url"] is None
    second = httpx.get(first["next_page_url"], headers=own.headers).json()
    assert [e["to"][0] for e in second["data"]] == [sent[0]]
    assert second["has_more"] is False and second["next_page_url"] is None
    back = httpx.get(second["previous_page_url"], headers=own.headers).json()
    assert [e["to"][0] for e in back["data"]] == [sent[2], sent[1]]


# --- a real SMTP relay: STARTTLS, a login, temporary and permanent failures --------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_smtp_failures_are_retried_like_any_job(
    backend: str, tmp_path: Any, start_server: Callable[..., Server]
) -> None:
    relay = TestSmtpServer(
        tmp_path,
        username="caja",
        password="s3creta",
        temporary_failures=2,
        refuse=lambda address: address.startswith("rechazado"),
    ).start()
    try:
        server = start_server(
            backend,
            _relay_env(
                relay,
                CAJA_SMTP_FROM="Tienda Ejemplo <pagos@tienda.example>",
                CAJA_WEBHOOK_RETRY_SCHEDULE="0,0.3,0.3,0.3",
                CAJA_WEBHOOK_RETRY_JITTER="0",
            ),
        )
        headers = {"Authorization": f"Bearer {server.api_key}"}
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=10) as client:
            to = unique_address("cliente")
            job_id = client.post("/_caja/emails", json={"to": to}).json()["id"]
            relay.wait_for(lambda: len(relay.delivered) == 1, what="the message through the relay")
            [delivered] = relay.delivered
            assert delivered.tls and delivered.login == "caja"
            assert delivered.mail_from == "pagos@tienda.example" and delivered.rcpt_tos == [to]
            message = message_from_bytes(delivered.content, policy=policy.default)
            assert message["From"] == "Tienda Ejemplo <pagos@tienda.example>"
            assert message["X-Caja-Job"] == job_id
            assert message["Message-ID"] == f"<{job_id}@tienda.example>"
            assert relay.data_commands == 3  # two temporary failures, then accepted

            job, attempts = _wait_job(server.database_url, job_id, "succeeded")
            assert job.attempts == 3
            assert [a.error is not None and "451" in a.error for a in attempts] == [True, True, False]
            assert all(a.url == f"smtp://127.0.0.1:{relay.port}" for a in attempts)
            # Nothing went to the built-in catcher: a relay is configured.
            assert client.get("/_caja/emails").json()["data"] == []
            sent = wait_for_job(client, job_id, "sent")
            assert sent["attempts"] == 3 and sent["caught_email_id"] is None and sent["last_error"] is None

            refused = client.post("/_caja/emails", json={"to": "rechazado@example.com"}).json()["id"]
            job, attempts = _wait_job(server.database_url, refused, "failed")
            [attempt] = attempts  # a 5xx refusal is permanent: not retried
            assert attempt.error is not None and "550" in attempt.error
            assert len(relay.delivered) == 1
            failed = wait_for_job(client, refused, "failed")
            assert failed["attempts"] == 1 and "550" in failed["last_error"]
            assert failed["next_attempt_at"] is None and failed["finished_at"] is not None
    finally:
        relay.stop()


def _wait_job(
    database_url: str, job_id: str, status: str, timeout: float = 20.0
) -> tuple[Job, list[Attempt]]:
    deadline = time.monotonic() + timeout
    while True:
        job, attempts = run_async(job_and_attempts(database_url, job_id))
        if job is not None and job.status == status:
            return job, attempts
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} is {job and job.status}, not {status}: {attempts}")
        time.sleep(0.1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_with_nowhere_to_send_the_job_waits_and_retries(
    backend: str, start_server: Callable[..., Server]
) -> None:
    server = start_server(
        backend,
        {"CAJA_WEBHOOK_RETRY_SCHEDULE": "0,0.2,0.2,600", "CAJA_WEBHOOK_RETRY_JITTER": "0"},
        "--no-mail-catcher",
    )
    headers = {"Authorization": f"Bearer {server.api_key}"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=10) as client:
        job_id = client.post("/_caja/emails", json={"to": unique_address("espera")}).json()["id"]
        deadline = time.monotonic() + 20
        while True:
            job, attempts = run_async(job_and_attempts(server.database_url, job_id))
            if len(attempts) >= 3:
                break
            assert time.monotonic() < deadline, attempts
            time.sleep(0.1)
        # Kept for a later try (the operator may still configure SMTP), not given up.
        assert job is not None and job.status == "pending"
        assert all(a.error and "no SMTP server configured" in a.error for a in attempts)
        assert client.get("/_caja/emails").json()["data"] == []
        waiting = client.get(f"/_caja/email_jobs/{job_id}").json()
        assert waiting["status"] == "pending" and waiting["attempts"] >= 3
        assert "no SMTP server configured" in waiting["last_error"]
        assert waiting["next_attempt_at"] >= waiting["last_attempted_at"] and waiting["finished_at"] is None


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_test_mode_receipt_stays_in_the_catcher_though_a_relay_is_configured(
    backend: str, tmp_path: Any, start_server: Callable[..., Server]
) -> None:
    relay = TestSmtpServer(tmp_path, username="caja", password="s3creta").start()
    try:
        server = start_server(backend, _relay_env(relay))
        headers = {"Authorization": f"Bearer {server.api_key}"}
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=10) as client:
            payer = unique_address("pagador")
            job_id = in_unit(
                server, lambda tx, t: emails.enqueue_payment_receipt(tx, t, now_ms(), _receipt(payer))
            )
            [caught] = wait_for_email(client, payer)
            assert caught["job_id"] == job_id
            _, [attempt] = _wait_job(server.database_url, job_id, "succeeded")
            assert attempt.url == f"smtp://127.0.0.1:{server.mail_port}"
            # The operator's relay check still goes through the relay, as asked.
            operator = unique_address("operador")
            checked = client.post("/_caja/emails", json={"to": operator}).json()["id"]
            relay.wait_for(lambda: len(relay.delivered) == 1, what="the relay check")
            assert [d.rcpt_tos for d in relay.delivered] == [[operator]]
            _wait_job(server.database_url, checked, "succeeded")
    finally:
        relay.stop()


@pytest.mark.parametrize("mode", ["relay", "catcher, and the catcher off"])
def test_test_mode_receipts_relayed_when_asked_and_never_retried_with_nowhere_to_go(
    mode: str, tmp_path: Any, start_server: Callable[..., Server]
) -> None:
    relay = TestSmtpServer(tmp_path, username="caja", password="s3creta").start()
    try:
        if mode == "relay":
            server = start_server("sqlite", _relay_env(relay, CAJA_TEST_MODE_EMAIL="relay"))
        else:
            server = start_server("sqlite", _relay_env(relay), "--no-mail-catcher")
        payer = unique_address("pagador")
        job_id = in_unit(
            server, lambda tx, t: emails.enqueue_payment_receipt(tx, t, now_ms(), _receipt(payer))
        )
        if mode == "relay":
            relay.wait_for(lambda: len(relay.delivered) == 1, what="the receipt through the relay")
            assert relay.delivered[0].rcpt_tos == [payer]
            _wait_job(server.database_url, job_id, "succeeded")
        else:
            _, [attempt] = _wait_job(server.database_url, job_id, "failed")
            assert attempt.error is not None and "CAJA_TEST_MODE_EMAIL" in attempt.error
            assert relay.delivered == []
    finally:
        relay.stop()
