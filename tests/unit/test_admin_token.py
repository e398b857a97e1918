"""The operator's token: off unless configured, and compared whole."""

from __future__ import annotations

import pytest

from caja.api.auth import check_admin_token
from caja.config import Settings
from caja.domain.errors import AuthenticationError, ForbiddenError


def test_the_token_comes_from_the_environment_and_is_off_by_default() -> None:
    assert Settings.from_env({}).admin_token is None
    assert Settings.from_env({"CAJA_ADMIN_TOKEN": "s3creto"}).admin_token == "s3creto"


def test_with_no_token_configured_the_operators_routes_are_off() -> None:
    for sent in (None, "Bearer ", "Bearer anything"):
        with pytest.raises(ForbiddenError) as refused:
            check_admin_token(sent, None)
        assert refused.value.http_status == 403
        assert refused.value.details[0].code == "conekta.errors.authentication.admin_disabled"


@pytest.mark.parametrize(
    "sent", [None, "", "Bearer", "Bearer s3cret", "Bearer s3cretos", "Basic s3creto", "s3creto", "Bearer  "]
)
def test_anything_but_the_whole_token_as_bearer_is_refused(sent: str | None) -> None:
    with pytest.raises(AuthenticationError) as refused:
        check_admin_token(sent, "s3creto")
    assert refused.value.http_status == 401


def test_the_token_as_bearer_passes() -> None:
    check_admin_token("Bearer s3creto", "s3creto")
    check_admin_token("  bearer s3creto ", "s3creto")
