"""A small generic registry of named factories, and the project's registries.

register(name) raises on a duplicate; get(name) raises KeyError naming close matches.
"""
from __future__ import annotations

import difflib
from typing import Callable, Generic, Iterator, TypeVar

T = TypeVar("T", bound=Callable)


class Registry(Generic[T]):
    """Maps names to factory functions (timm-style: one small function per entry)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str | None = None) -> Callable[[T], T]:
        """Decorator: register the function under `name` (default: its __name__)."""

        def decorator(func: T) -> T:
            key = name or func.__name__
            if key in self._entries:
                raise ValueError(f"{self.kind} {key!r} is already registered")
            self._entries[key] = func
            return func

        return decorator

    def get(self, name: str) -> T:
        """The factory registered as `name`; KeyError with close matches when missing."""
        if name not in self._entries:
            close = difflib.get_close_matches(name, self._entries, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise KeyError(f"unknown {self.kind} {name!r}{hint} (known: {', '.join(self.names())})")
        return self._entries[name]

    def names(self) -> list[str]:
        """All registered names, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)


BACKBONES: Registry = Registry("backbone")
DETECTORS: Registry = Registry("detector")
TRACKERS: Registry = Registry("tracker")
