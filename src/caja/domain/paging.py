"""What a client asks of a list: how many, from where, matching what."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

from caja.domain.errors import ParameterValidationError

DEFAULT_LIMIT = 20
MAX_LIMIT = 250

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PageRequest:
    limit: int = DEFAULT_LIMIT
    next: str | None = None
    previous: str | None = None
    search: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_LIMIT:
            raise ParameterValidationError.invalid("limit", f"limit must be from 1 to {MAX_LIMIT}.")
        if self.next is not None and self.previous is not None:
            raise ParameterValidationError.invalid("previous", "Send next or previous, not both.")

    @property
    def backwards(self) -> bool:
        return self.previous is not None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T] = field(default_factory=list)
    has_more: bool = False
    request: PageRequest = field(default_factory=PageRequest)

    @property
    def next_cursor(self) -> str | None:
        """The id to pass as ``next`` for older items, when there are any."""
        more_older = self.has_more if not self.request.backwards else bool(self.items)
        return _id_of(self.items[-1]) if more_older and self.items else None

    @property
    def previous_cursor(self) -> str | None:
        """The id to pass as ``previous`` for newer items, when there are any."""
        more_newer = self.has_more if self.request.backwards else self.request.next is not None
        return _id_of(self.items[0]) if more_newer and self.items else None


def _id_of(item: object) -> str:
    value = getattr(item, "id", None)
    if not isinstance(value, str):
        raise TypeError(f"{type(item).__name__} has no string id")
    return value
