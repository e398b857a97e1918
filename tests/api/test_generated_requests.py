"""Requests generated from Caja's own OpenAPI document: no 5xx, and every answer as documented.

schemathesis builds requests for every operation from the document, valid ones and ones that
break its schemas, and sends them to a running ``caja serve`` with the sandbox's test key; each
answer is checked (the store network's calls signed with a test network's secret, so that they
get past its authentication): never a server error, a status the operation documents, the media type it
documents for that status, and a body and headers that match the documented schema (for errors,
the Conekta error object). The examples are derandomized, so a failure repeats on every run.
(schemathesis's own pytest plugin cannot load a schema from a fixture under this pytest, so the
operations are walked here, each through Hypothesis with its strategy.)
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from urllib.parse import urlsplit

import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.generation.stateful.state_machine import APIStateMachine
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import AccountKeys, Server
from tests.tools.network_client import NetworkClient

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES_PER_OPERATION_AND_MODE = 15


class NetworkSignature(requests.auth.AuthBase):
    """Signs each request to the store network's API over the exact bytes it sends."""

    def __init__(self, network: NetworkClient) -> None:
        self.network = network

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        path = urlsplit(request.url).path
        if path.startswith("/network/") and request.method:
            body = request.body or b""
            raw = body.encode() if isinstance(body, str) else body
            request.headers.update(self.network.headers(request.method, path, raw))
        return request


def test_generated_requests_get_documented_answers(server: Server) -> None:
    schema = schemathesis.openapi.from_url(f"{server.base_url}/openapi.json")
    headers = {"Authorization": f"Bearer {server.api_key}", "Accept": "application/vnd.conekta-v2.2.0+json"}
    credentials = json.loads(server.cli("networks", "create", "--name", "Red generada", "--test", "--json"))
    network = NetworkClient(server.base_url, credentials["id"], credentials["secret"])
    session = requests.Session()
    session.auth = NetworkSignature(network)
    answered: dict[str, set[int]] = defaultdict(set)

    def record(response: requests.Response, *_args: object, **_kwargs: object) -> None:
        answered[urlsplit(response.url).path].add(response.status_code)

    session.hooks["response"].append(record)
    failures: list[str] = []
    tested = 0
    for found in schema.get_all_operations():
        operation = found.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES_PER_OPERATION_AND_MODE,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def answers_as_documented(case: schemathesis.Case) -> None:
                case.call_and_validate(
                    base_url=server.base_url, session=session, headers=headers, checks=CHECKS
                )

            try:
                answers_as_documented()
            except Unsatisfiable:
                # Nothing to break in a request with no parameters and no body.
                if mode is not GenerationMode.NEGATIVE or _takes_input(operation):
                    failures.append(f"{operation.method.upper()} {operation.path} ({mode.value}): no cases")
            except Exception as exc:  # every operation's failure is reported below
                failures.append(f"{operation.method.upper()} {operation.path} ({mode.value}): {exc}")
            tested += 1
    network.close()
    session.close()
    assert tested >= 2 * 35  # every operation of the document, in both modes
    # The store network's calls got past its signature check: refused for their bodies, and a
    # well-formed lookup of an unknown reference answered (declined `01`).
    for call in ("lookups", "payments", "reversals"):
        assert 422 in answered[f"/network/v1/{call}"], (call, answered[f"/network/v1/{call}"])
    assert 200 in answered["/network/v1/lookups"], answered["/network/v1/lookups"]
    assert not failures, "\n\n".join(failures)


def _takes_input(operation: schemathesis.APIOperation) -> bool:
    parameters = (operation.path_parameters, operation.query, operation.headers, operation.cookies)
    return any(len(group) > 0 for group in parameters) or len(operation.body) > 0


def test_chains_of_calls_through_the_documents_links_get_documented_answers(
    server: Server, new_account: Callable[[str], AccountKeys]
) -> None:
    """Stateful: links (the document's, and those schemathesis infers) chain calls on the objects
    earlier calls made (a webhook key created, then read, changed, deleted; an event listed, then
    shown), each answer checked. A new account each run, so the chains start from the same state
    whatever ran before."""
    schema = schemathesis.openapi.from_url(f"{server.base_url}/openapi.json")
    account = new_account("Cadenas generadas")
    headers = {"Authorization": f"Bearer {account.test_key}", "Accept": "application/vnd.conekta-v2.2.0+json"}
    reached: set[str] = set()

    class Machine(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, object]:
            return {"base_url": server.base_url, "headers": headers}

        def validate_response(
            self, response: schemathesis.Response, case: schemathesis.Case, **kwargs: object
        ) -> None:
            if response.status_code == 200:
                reached.add(f"{case.method.upper()} {case.path}")
            case.validate_response(response, checks=CHECKS)

    assert issubclass(Machine, APIStateMachine)
    Machine.run(
        settings=settings(
            max_examples=40,
            stateful_step_count=8,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
    )
    # The chains reached objects that only exist because an earlier call made them. Which of a key's
    # linked operations a derandomized run reaches depends on every answer before it (any new link
    # or list shifts the path), so any one of them proves the links carried the id.
    assert "POST /webhook_keys" in reached, sorted(reached)
    linked = {f"{verb} /webhook_keys/{{id}}" for verb in ("GET", "PUT", "DELETE")}
    assert linked & reached, sorted(reached)
