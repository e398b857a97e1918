"""Requests generated from Caja's own OpenAPI document: no 5xx, and every answer as documented.

schemathesis builds requests for every operation from the document, valid ones and ones that
break its schemas, and sends them to a running ``caja serve`` with the sandbox's test key; each
answer is checked: never a server error, a status the operation documents, the media type it
documents for that status, and a body and headers that match the documented schema (for errors,
the Conekta error object). The examples are derandomized, so a failure repeats on every run.
(schemathesis's own pytest plugin cannot load a schema from a fixture under this pytest, so the
operations are walked here, each through Hypothesis with its strategy.)
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import Server

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES_PER_OPERATION_AND_MODE = 15


def test_generated_requests_get_documented_answers(server: Server) -> None:
    schema = schemathesis.openapi.from_url(f"{server.base_url}/openapi.json")
    headers = {"Authorization": f"Bearer {server.api_key}", "Accept": "application/vnd.conekta-v2.2.0+json"}
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
                case.call_and_validate(base_url=server.base_url, headers=headers, checks=CHECKS)

            try:
                answers_as_documented()
            except Unsatisfiable:
                # Nothing to break in a request with no parameters and no body.
                if mode is not GenerationMode.NEGATIVE or _takes_input(operation):
                    failures.append(f"{operation.method.upper()} {operation.path} ({mode.value}): no cases")
            except Exception as exc:  # every operation's failure is reported below
                failures.append(f"{operation.method.upper()} {operation.path} ({mode.value}): {exc}")
            tested += 1
    assert tested >= 2 * 35  # every operation of the document, in both modes
    assert not failures, "\n\n".join(failures)


def _takes_input(operation: schemathesis.APIOperation) -> bool:
    parameters = (operation.path_parameters, operation.query, operation.headers, operation.cookies)
    return any(len(group) > 0 for group in parameters) or len(operation.body) > 0
