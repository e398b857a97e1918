"""Conekta's HTTP conventions, checked on the wire with httpx."""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.checks import DAY, assert_error_envelope, codes_of, params_of
from tests.conftest import AccountKeys, Server

VERSIONS = ("2.0.0", "2.1.0", "2.2.0", "2.3.0")


def vendor(version: str) -> str:
    return f"application/vnd.conekta-v{version}+json"


def customer_body(**extra: Any) -> dict[str, Any]:
    return {"name": "Fulanito", "email": "fulanito@example.com", "phone": "+5218181818181", **extra}


def create_customer(client: httpx.Client, **extra: Any) -> dict[str, Any]:
    response = client.post("/customers", json=customer_body(**extra))
    assert response.status_code == 200, response.text
    return response.json()


def error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/vnd.conekta-v2.")
    body = response.json()
    assert_error_envelope(body)
    return body


def all_customer_ids(client: httpx.Client) -> list[str]:
    ids: list[str] = []
    url: str | None = "/customers?limit=250"
    while url is not None:
        response = client.get(url)
        assert response.status_code == 200, response.text
        page = response.json()
        ids += [c["id"] for c in page["data"]]
        url = page["next_page_url"]
    return ids


# --- authentication -------------------------------------------------------------------------


def test_bearer_and_basic_auth_are_both_accepted(server: Server) -> None:
    with httpx.Client(base_url=server.base_url, timeout=10.0) as client:
        bearer = client.get("/customers?limit=1", headers={"Authorization": f"Bearer {server.api_key}"})
        assert bearer.status_code == 200, bearer.text
        basic = client.get("/customers?limit=1", auth=(server.api_key, ""))
        assert basic.status_code == 200, basic.text
        assert bearer.json()["object"] == basic.json()["object"] == "list"
        created = client.post("/customers", auth=(server.api_key, ""), json=customer_body())
        assert created.status_code == 200
        fetched = client.get(
            f"/customers/{created.json()['id']}", headers={"Authorization": f"Bearer {server.api_key}"}
        )
        assert fetched.json()["id"] == created.json()["id"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/customers"),
        ("POST", "/customers"),
        ("GET", "/customers/cus_2abc"),
        ("DELETE", "/customers/x"),
    ],
)
def test_missing_key_is_401(server: Server, method: str, path: str) -> None:
    response = httpx.request(method, f"{server.base_url}{path}", json=customer_body(), timeout=10.0)
    body = error(response, 401)
    assert body["type"] == "authentication_error"
    assert codes_of(body) == ["conekta.errors.authentication.missing_key"]


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer key_" + "x" * 24,
        "Basic " + base64.b64encode(b"key_notarealkey123456:").decode(),
        "Basic !!!not-base64!!!",
        "Token key_whatever",
        "Bearer",
    ],
    ids=["bad-bearer", "bad-basic", "garbled-basic", "unknown-scheme", "empty-bearer"],
)
def test_bad_key_is_401(server: Server, authorization: str) -> None:
    response = httpx.get(
        f"{server.base_url}/customers", headers={"Authorization": authorization}, timeout=10.0
    )
    body = error(response, 401)
    assert body["type"] == "authentication_error"
    assert codes_of(body)[0].startswith("conekta.errors.authentication.")


def test_a_wrong_key_cannot_write(server: Server, account: AccountKeys, own: httpx.Client) -> None:
    wrong = httpx.post(
        f"{server.base_url}/customers",
        json=customer_body(),
        auth=("key_" + secrets.token_hex(16), ""),
        timeout=10.0,
    )
    error(wrong, 401)
    assert all_customer_ids(own) == []


# --- versions -------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_every_v2_version_is_accepted_and_echoed(http: httpx.Client, version: str) -> None:
    listed = http.get("/customers?limit=1", headers={"Accept": vendor(version)})
    assert listed.status_code == 200, listed.text
    assert listed.headers["content-type"].split(";")[0] == vendor(version)
    created = http.post("/customers", json=customer_body(), headers={"Accept": vendor(version)})
    assert created.status_code == 200
    assert created.headers["content-type"].split(";")[0] == vendor(version)
    missing = http.get("/customers/cus_2nadanadanada", headers={"Accept": vendor(version)})
    assert missing.status_code == 404
    assert missing.headers["content-type"].split(";")[0] == vendor(version)


@pytest.mark.parametrize(
    "accept",
    [
        "application/vnd.conekta-v2.9.0+json",
        "application/vnd.conekta-v3.0.0+json",
        "application/vnd.conekta-v1.0.0+json",
        "application/vnd.conekta-v2.3+json",
        "application/vnd.conekta-garbage",
    ],
)
def test_unknown_or_malformed_version_is_a_conekta_error(
    server: Server, own: httpx.Client, accept: str
) -> None:
    listed = own.get("/customers", headers={"Accept": accept})
    body = error(listed, 406)
    assert body["details"][0]["param"] == "Accept"
    created = own.post("/customers", json=customer_body(), headers={"Accept": accept})
    error(created, 406)
    # A request refused for its version wrote nothing.
    assert all_customer_ids(own) == []


@pytest.mark.parametrize("accept", [None, "*/*", "application/json"], ids=["absent", "any", "json"])
def test_no_conekta_version_means_the_documented_default(server: Server, accept: str | None) -> None:
    with httpx.Client(base_url=server.base_url, auth=(server.api_key, ""), timeout=10.0) as client:
        del client.headers["accept"]
        headers = {"Accept": accept} if accept is not None else {}
        response = client.get("/customers?limit=1", headers=headers)
        if accept is None:
            assert "accept" not in response.request.headers
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].split(";")[0] == vendor("2.3.0")


# --- languages ------------------------------------------------------------------------------


def test_errors_are_in_spanish_by_default_and_english_on_request(http: httpx.Client) -> None:
    default = http.post("/customers", json={"name": "Sin correo"}).json()
    spanish = http.post("/customers", json={"name": "Sin correo"}, headers={"Accept-Language": "es"}).json()
    english = http.post("/customers", json={"name": "Sin correo"}, headers={"Accept-Language": "en"}).json()
    english_us = http.post(
        "/customers", json={"name": "Sin correo"}, headers={"Accept-Language": "en-US,en;q=0.9"}
    ).json()
    assert default["details"][0]["message"] == spanish["details"][0]["message"]
    assert "requerido" in spanish["details"][0]["message"]
    assert "required" in english["details"][0]["message"]
    assert english_us["details"][0]["message"] == english["details"][0]["message"]
    assert codes_of(spanish) == codes_of(english)


def test_not_found_is_translated_too(http: httpx.Client) -> None:
    spanish = http.get("/customers/cus_2NoExiste").json()["details"][0]["message"]
    english = http.get("/customers/cus_2NoExiste", headers={"Accept-Language": "en"}).json()["details"][0][
        "message"
    ]
    assert spanish != english
    assert "not found" in english.lower()
    assert "encontrado" in spanish.lower()


# --- request bodies -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b'{"name": "a",}', b"", b"\xff\xfe\x00", b'{"name": "a"'],
    ids=["garbage", "trailing-comma", "empty", "binary", "truncated"],
)
def test_malformed_json_is_400_never_500(http: httpx.Client, raw: bytes) -> None:
    customer = create_customer(http)
    for method, path in (
        ("POST", "/customers"),
        ("PUT", f"/customers/{customer['id']}"),
        ("POST", f"/customers/{customer['id']}/payment_sources"),
    ):
        response = http.request(method, path, content=raw, headers={"Content-Type": "application/json"})
        body = error(response, 400)
        assert body["type"] in {"parameter_validation_error", "request_error"}


@pytest.mark.parametrize(
    "raw", [b"[]", b'[{"name": "a", "email": "a@example.com"}]', b'"text"', b"42", b"null"]
)
def test_a_body_that_is_not_an_object_is_400(http: httpx.Client, raw: bytes) -> None:
    response = http.post("/customers", content=raw, headers={"Content-Type": "application/json"})
    error(response, 400)


def test_unknown_parameter_is_named(http: httpx.Client) -> None:
    body = error(http.post("/customers", json=customer_body(favourite_colour="azul")), 422)
    assert params_of(body) == ["favourite_colour"]
    assert codes_of(body)[0].endswith(".unknown")

    nested = error(
        http.post("/customers", json=customer_body(payment_sources=[{"type": "cash_recurrent", "x": 1}])), 422
    )
    assert params_of(nested) == ["payment_sources[0].x"]
    assert codes_of(nested)[0].endswith(".unknown")

    customer = create_customer(http)
    on_update = error(http.put(f"/customers/{customer['id']}", json={"nickname": "Fula"}), 422)
    assert params_of(on_update) == ["nickname"] and codes_of(on_update)[0].endswith(".unknown")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", 5),
        ("name", ["Fulanito"]),
        ("email", 123),
        ("corporate", "yes"),
        ("metadata", ["a"]),
        ("payment_sources", {"type": "cash_recurrent"}),
    ],
)
def test_wrong_types_are_invalid_datatype(http: httpx.Client, field: str, value: Any) -> None:
    body = error(http.post("/customers", json={**customer_body(), field: value}), 422)
    assert params_of(body) == [field]
    assert codes_of(body)[0].endswith(".invalid_datatype")


@pytest.mark.parametrize("value", ["1700000000", 1.5, True, [1]])
def test_expires_at_must_be_an_integer(http: httpx.Client, value: Any) -> None:
    customer = create_customer(http)
    body = error(
        http.post(
            f"/customers/{customer['id']}/payment_sources",
            json={"type": "cash_recurrent", "expires_at": value},
        ),
        422,
    )
    assert params_of(body) == ["expires_at"]
    assert codes_of(body)[0].endswith(".invalid_datatype")


def test_several_errors_are_reported_together(http: httpx.Client) -> None:
    body = error(
        http.post("/customers", json={"name": 5, "email": "no-es-correo", "zzz": 1, "phone": "abc"}), 422
    )
    assert sorted(p or "" for p in params_of(body)) == ["email", "name", "phone", "zzz"]
    assert len(set(codes_of(body))) == 4


@pytest.mark.parametrize(
    ("source", "param", "code"),
    [
        ({"type": "card"}, "payment_sources[1].type", "payment_sources.type"),
        ({"type": 5}, "payment_sources[1].type", "payment_sources.type"),
        (
            {"type": "cash_recurrent", "expires_at": 5},
            "payment_sources[1].expires_at",
            "payment_sources.expires_at",
        ),
        ({"type": "cash_recurrent", "color": "rojo"}, "payment_sources[1].color", "payment_sources.color"),
    ],
    ids=["domain-type", "datatype", "domain-expiry", "unknown"],
)
def test_params_keep_list_indexes_and_codes_do_not(
    http: httpx.Client, source: dict[str, Any], param: str, code: str
) -> None:
    """Every error names the field the same way, wherever in Caja it was caught."""
    body = error(
        http.post("/customers", json=customer_body(payment_sources=[{"type": "cash_recurrent"}, source])), 422
    )
    assert params_of(body) == [param]
    [found] = codes_of(body)
    assert found.startswith(f"conekta.errors.parameter_validation.{code}.")
    assert "[" not in found


def test_a_failed_create_writes_nothing(own: httpx.Client) -> None:
    before = all_customer_ids(own)
    now = int(time.time())
    bad_requests = [
        customer_body(payment_sources=[{"type": "cash_recurrent"}, {"type": "card"}]),
        customer_body(
            payment_sources=[
                {"type": "spei_recurrent"},
                {"type": "cash_recurrent", "expires_at": now + 500 * DAY},
            ]
        ),
        customer_body(
            payment_sources=[{"type": "cash_recurrent"}], default_payment_source_id="off_ref_2NoEsMia"
        ),
        customer_body(payment_sources=[{"type": "cash_recurrent", "expires_at": "mañana"}]),
    ]
    for request in bad_requests:
        response = own.post("/customers", json=request)
        body = error(response, 422)
        assert body["type"] == "parameter_validation_error"
    assert all_customer_ids(own) == before == []


# --- responses ------------------------------------------------------------------------------


def test_every_success_is_200(http: httpx.Client) -> None:
    customer = http.post("/customers", json=customer_body())
    assert customer.status_code == 200
    cid = customer.json()["id"]
    steps = [
        http.get(f"/customers/{cid}"),
        http.get("/customers"),
        http.put(f"/customers/{cid}", json={"name": "Otro"}),
        source := http.post(f"/customers/{cid}/payment_sources", json={"type": "cash_recurrent"}),
        http.get(f"/customers/{cid}/payment_sources"),
        http.get(f"/customers/{cid}/payment_sources/{source.json()['id']}"),
        http.put(
            f"/customers/{cid}/payment_sources/{source.json()['id']}",
            json={"expires_at": int(time.time()) + 9 * DAY},
        ),
        http.delete(f"/customers/{cid}/payment_sources/{source.json()['id']}"),
        http.delete(f"/customers/{cid}"),
    ]
    assert [r.status_code for r in steps] == [200] * len(steps)


def test_timestamps_are_integers(http: httpx.Client) -> None:
    expires_at = int(time.time()) + 20 * DAY
    customer = create_customer(
        http,
        payment_sources=[{"type": "cash_recurrent", "expires_at": expires_at}, {"type": "spei_recurrent"}],
    )
    assert type(customer["created_at"]) is int
    cash, spei = customer["payment_sources"]["data"]
    assert type(cash["created_at"]) is int and type(spei["created_at"]) is int
    assert type(cash["expires_at"]) is int and cash["expires_at"] == expires_at
    # For SPEI, Conekta's (and the SDK's) expires_at is a string: "none" or ISO 8601.
    assert spei["expires_at"] == "none"
    assert abs(customer["created_at"] - time.time()) < 120


# --- lists ----------------------------------------------------------------------------------


def test_list_envelope(http: httpx.Client) -> None:
    create_customer(http)
    body = http.get("/customers").json()
    assert set(body) >= {"object", "has_more", "next_page_url", "previous_page_url", "data"}
    assert body["object"] == "list"
    assert isinstance(body["has_more"], bool)
    assert isinstance(body["data"], list) and body["data"]
    customer = create_customer(http, payment_sources=[{"type": "cash_recurrent"}])
    sources = http.get(f"/customers/{customer['id']}/payment_sources").json()
    assert set(sources) >= {"object", "has_more", "next_page_url", "previous_page_url", "data"}
    assert sources["object"] == "list" and len(sources["data"]) == 1


@pytest.mark.parametrize("limit", ["0", "251", "abc", "-1", "1.5", ""])
def test_bad_limit_is_422_naming_limit(http: httpx.Client, limit: str) -> None:
    body = error(http.get(f"/customers?limit={limit}"), 422)
    assert params_of(body) == ["limit"]
    customer = create_customer(http)
    body = error(http.get(f"/customers/{customer['id']}/payment_sources?limit={limit}"), 422)
    assert params_of(body) == ["limit"]


def test_default_limit_is_20_and_250_is_allowed(own: httpx.Client) -> None:
    made = [create_customer(own, name=f"Cliente {i}")["id"] for i in range(23)]
    default = own.get("/customers").json()
    assert len(default["data"]) == 20
    assert default["has_more"] is True
    assert [c["id"] for c in default["data"]] == list(reversed(made))[:20]
    everything = own.get("/customers?limit=250").json()
    assert len(everything["data"]) == 23 and everything["has_more"] is False


def test_paging_is_stable_while_customers_are_created(own: httpx.Client) -> None:
    made = [create_customer(own, name=f"Cliente {i:02d}")["id"] for i in range(45)]
    pages: list[list[str]] = []
    arrived: list[str] = []
    url: str | None = "/customers?limit=10"
    while url is not None:
        page = own.get(url).json()
        pages.append([c["id"] for c in page["data"]])
        # Someone creates a customer between two page fetches.
        arrived.append(create_customer(own, name="Recién llegado")["id"])
        url = page["next_page_url"]
        assert len(pages) <= 5
    visited = [cid for page in pages for cid in page]
    assert [len(p) for p in pages] == [10, 10, 10, 10, 5]
    assert visited == list(reversed(made))  # each exactly once, newest first, no newcomer
    assert len(set(visited)) == 45

    # previous_page_url walks back through the same pages.
    back: list[list[str]] = []
    last = own.get("/customers?limit=10&next=" + pages[3][-1]).json()
    assert [c["id"] for c in last["data"]] == pages[4]
    url = last["previous_page_url"]
    for _ in range(4):
        assert url is not None
        page = own.get(url).json()
        back.append([c["id"] for c in page["data"]])
        url = page["previous_page_url"]
    assert back == list(reversed(pages[:4]))
    # Before the first page now sit the customers created while paging.
    assert url is not None
    newest = own.get(url).json()
    assert sorted(c["id"] for c in newest["data"]) == sorted(arrived)
    assert newest["previous_page_url"] is None


def test_paging_survives_deleting_what_was_seen(own: httpx.Client) -> None:
    """Delete every customer of a page, then follow next_page_url: a common clean-up loop."""
    made = [create_customer(own, name=f"Borrable {i}")["id"] for i in range(7)]
    seen: list[str] = []
    url: str | None = "/customers?limit=3"
    while url is not None:
        response = own.get(url)
        assert response.status_code == 200, response.text
        page = response.json()
        for customer in page["data"]:
            seen.append(customer["id"])
            assert own.delete(f"/customers/{customer['id']}").status_code == 200
        url = page["next_page_url"]
    assert seen == list(reversed(made))
    assert all_customer_ids(own) == []


def test_next_and_previous_cannot_be_combined(own: httpx.Client) -> None:
    a, b = create_customer(own)["id"], create_customer(own)["id"]
    body = error(own.get(f"/customers?next={a}&previous={b}"), 422)
    assert params_of(body)[0] in {"next", "previous"}


def test_a_cursor_from_elsewhere_is_422(own: httpx.Client, http: httpx.Client) -> None:
    foreign = create_customer(http)["id"]
    create_customer(own)
    body = error(own.get(f"/customers?next={foreign}"), 422)
    assert params_of(body) == ["next"]


# --- tenancy --------------------------------------------------------------------------------


def test_another_account_cannot_touch_my_customers(
    server: Server,
    new_account: Callable[[str], AccountKeys],
    client_for: Callable[[str], httpx.Client],
) -> None:
    alice = client_for(new_account("Cuenta A").test_key)
    bob = client_for(new_account("Cuenta B").test_key)
    mine = create_customer(alice, payment_sources=[{"type": "cash_recurrent"}])
    cid, sid = mine["id"], mine["payment_sources"]["data"][0]["id"]

    for response in (
        bob.get(f"/customers/{cid}"),
        bob.put(f"/customers/{cid}", json={"name": "Robado"}),
        bob.delete(f"/customers/{cid}"),
        bob.get(f"/customers/{cid}/payment_sources"),
        bob.post(f"/customers/{cid}/payment_sources", json={"type": "spei_recurrent"}),
        bob.get(f"/customers/{cid}/payment_sources/{sid}"),
        bob.put(f"/customers/{cid}/payment_sources/{sid}", json={"expires_at": 0}),
        bob.delete(f"/customers/{cid}/payment_sources/{sid}"),
    ):
        assert error(response, 404)["type"] == "resource_not_found_error"
    assert all_customer_ids(bob) == []
    assert bob.get("/customers", params={"search": cid}).json()["data"] == []

    # And nothing changed for the owner.
    again = alice.get(f"/customers/{cid}").json()
    assert again["name"] == mine["name"]
    assert [s["id"] for s in again["payment_sources"]["data"]] == [sid]


def test_live_and_test_modes_are_separate(
    account: AccountKeys, client_for: Callable[[str], httpx.Client]
) -> None:
    test, live = client_for(account.test_key), client_for(account.live_key)
    in_test = create_customer(test, payment_sources=[{"type": "spei_recurrent"}])
    in_live = create_customer(live, payment_sources=[{"type": "cash_recurrent"}])
    assert in_test["livemode"] is False
    assert in_live["livemode"] is True
    assert live.get(f"/customers/{in_live['id']}").json()["livemode"] is True

    assert error(live.get(f"/customers/{in_test['id']}"), 404)["type"] == "resource_not_found_error"
    assert error(test.get(f"/customers/{in_live['id']}"), 404)["type"] == "resource_not_found_error"
    error(test.delete(f"/customers/{in_live['id']}"), 404)
    assert all_customer_ids(test) == [in_test["id"]]
    assert all_customer_ids(live) == [in_live["id"]]


# --- operations and docs --------------------------------------------------------------------


def test_health_ready_openapi_and_docs(server: Server) -> None:
    with httpx.Client(base_url=server.base_url, timeout=10.0) as client:
        assert client.get("/health").status_code == 200
        ready = client.get("/ready")
        assert ready.status_code == 200 and ready.json()["status"] == "ready"
        spec = client.get("/openapi.json")
        assert spec.status_code == 200
        document = json.loads(spec.content)
        assert "/customers" in document["paths"]
        assert "/customers/{id}/payment_sources" in document["paths"]
        assert {"get", "post"} <= set(document["paths"]["/customers"])
        docs = client.get("/docs")
        assert docs.status_code == 200
        assert docs.headers["content-type"].startswith("text/html")
        assert "<html" in docs.text.lower()


def test_unknown_route_is_a_conekta_404(http: httpx.Client) -> None:
    body = error(http.get("/no/such/route"), 404)
    assert body["type"] == "resource_not_found_error"
    body = error(http.post("/plans", json={}), 404)
    assert body["type"] == "resource_not_found_error"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PATCH", "/customers"),
        ("DELETE", "/customers"),
        ("POST", "/customers/cus_2abc"),
        ("PATCH", "/customers/cus_2abc"),
    ],
)
def test_wrong_method_is_a_conekta_405(http: httpx.Client, method: str, path: str) -> None:
    response = http.request(method, path, json={})
    body = error(response, 405)
    assert method in body["details"][0]["debug_message"]
    # RFC 9110: a 405 names the methods the path does take, from every route on it.
    allowed = {"/customers": "GET, POST", "/customers/cus_2abc": "DELETE, GET, PUT"}[path]
    assert response.headers["allow"] == allowed


def test_a_405_on_the_store_networks_fast_path_names_its_method(http: httpx.Client) -> None:
    response = http.get("/network/v1/payments")
    error(response, 405)
    assert response.headers["allow"] == "POST"


def test_barcode_route_errors(http: httpx.Client, server: Server) -> None:
    with httpx.Client(base_url=server.base_url, timeout=10.0) as public:
        unknown = public.get("/barcodes/10009999999999999999.png")
        assert error(unknown, 404)["type"] == "resource_not_found_error"
        for bad in ("abc", "12ab34", "1" * 200, "%00", "-1"):
            response = public.get(f"/barcodes/{bad}.png")
            assert 400 <= response.status_code < 500, (bad, response.status_code)
            assert_error_envelope(response.json())
        # A CLABE is a SPEI reference, not a cash barcode.
        customer = create_customer(http, payment_sources=[{"type": "spei_recurrent"}])
        clabe = customer["payment_sources"]["data"][0]["reference"]
        assert public.get(f"/barcodes/{clabe}.png").status_code == 404
        # A retired reference has no barcode any more: nothing may make it look payable.
        cash = create_customer(http, payment_sources=[{"type": "cash_recurrent"}])
        source = cash["payment_sources"]["data"][0]
        assert public.get(f"/barcodes/{source['reference']}.png").status_code == 200
        deleted = http.delete(f"/customers/{cash['id']}/payment_sources/{source['id']}")
        assert deleted.status_code == 200
        assert public.get(f"/barcodes/{source['reference']}.png").status_code == 404


# --- hostile input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b'{"name": "Nul\\u0000Byte", "email": "nul@example.com"}',
        b'{"name": "N", "email": "n@example.com", "custom_reference": "a\\u0000b"}',
        b'{"name": "N", "email": "n@example.com", "metadata": {"k": "a\\u0000b"}}',
        b'{"name": "N", "email": "n@example.com", "metadata": {"k\\u0000": "v"}}',
        b'{"name": "N", "email": "n@example.com", "metadata": {"k": NaN}}',
        b'{"name": "N", "email": "n@example.com", "metadata": {"k": Infinity}}',
        b'{"name": "N", "email": "n@example.com", "metadata": {"k": 1e400}}',
        b'{"name": "N", "email": "n@example.com", "metadata": {"k": 123456789012345678901234567890}}',
        b'{"name": "N", "email": "n@example.com", "metadata": {"k": "\\ud800"}}',
        b'{"name": "N", "email": "n@example.com", "metadata": {"k": ' + b"[" * 300 + b"]" * 300 + b"}}",
    ],
    ids=[
        "nul-name",
        "nul-reference",
        "nul-metadata-value",
        "nul-metadata-key",
        "nan",
        "infinity",
        "overflowing-float",
        "huge-integer",
        "lone-surrogate",
        "deep-nesting",
    ],
)
def test_hostile_bodies_are_rejected_not_stored(own: httpx.Client, raw: bytes) -> None:
    response = own.post("/customers", content=raw, headers={"Content-Type": "application/json"})
    assert 400 <= response.status_code < 500, response.text
    assert_error_envelope(response.json())
    listed = own.get("/customers")
    assert listed.status_code == 200, listed.text
    assert listed.json()["data"] == []

    customer = create_customer(own)
    update = own.put(
        f"/customers/{customer['id']}", content=raw, headers={"Content-Type": "application/json"}
    )
    assert 400 <= update.status_code < 500, update.text
    fetched = own.get(f"/customers/{customer['id']}")
    assert fetched.status_code == 200
    assert fetched.json()["name"] == customer["name"]


@pytest.mark.parametrize(
    "path",
    [
        "/customers?search=%00",
        "/customers?next=cus_%00",
        "/customers?previous=%00",
        "/customers/cus_%00",
        "/customers/cus_%00/payment_sources",
        "/customers/%00/payment_sources/off_ref_%00",
    ],
)
def test_nul_in_the_url_is_a_4xx(http: httpx.Client, path: str) -> None:
    response = http.get(path)
    assert 400 <= response.status_code < 500, response.text
    assert_error_envelope(response.json())
