"""The official Conekta SDK (``conekta==9.0.0``), pointed at a Caja server."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import conekta
import pytest

from tests.conftest import Server


def make_client(server: Server, api_key: str) -> conekta.ApiClient:
    configuration = conekta.Configuration(host=server.base_url, access_token=api_key)
    return conekta.ApiClient(configuration)


@pytest.fixture
def sdk(server: Server) -> Iterator[conekta.ApiClient]:
    with make_client(server, server.api_key) as client:
        yield client


@pytest.fixture
def sdk_for(server: Server) -> Callable[[str], conekta.ApiClient]:
    """An SDK client for another key (another account, or live mode)."""
    return lambda key: make_client(server, key)
