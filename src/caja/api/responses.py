"""JSON responses in Conekta's media type, rendered with orjson."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from caja.api.versioning import LATEST, media_type


class ConektaJSON(Response):
    def __init__(self, content: Any, *, version: str = LATEST, status_code: int = 200) -> None:
        super().__init__(content=content, status_code=status_code, media_type=media_type(version))

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
