"""A small generic registry of named factories, and the project's registries.

register(name) raises on a duplicate; get(name) raises KeyError naming close matches.
"""
from __future__ import annotations

import difflib
import importlib
import pkgutil
from typing import Callable, Generic, Iterator, TypeVar

T = TypeVar("T", bound=Callable)


class Registry(Generic[T]):
    """Maps names to factory functions (timm-style: one small function per entry).

    With `package`, every module of that package is imported the first time the registry is read,
    so an entry exists as soon as its file does: a new family or neck is one file, no list to edit.
    """

    def __init__(self, kind: str, package: str | None = None) -> None:
        self.kind = kind
        self.package = package
        self._entries: dict[str, T] = {}
        self._loaded = package is None

    def register(self, name: str | None = None) -> Callable[[T], T]:
        """Decorator: register the function under `name` (default: its __name__)."""

        def decorator(func: T) -> T:
            key = name or func.__name__
            if key in self._entries:
                raise ValueError(f"{self.kind} {key!r} is already registered")
            self._entries[key] = func
            return func

        return decorator

    def _load(self) -> None:
        """Import every module of `package` once (their decorators register the entries)."""
        if self._loaded:
            return
        self._loaded = True
        package = importlib.import_module(self.package)
        for info in pkgutil.iter_modules(package.__path__):
            if not info.name.startswith("_"):
                importlib.import_module(f"{self.package}.{info.name}")

    def get(self, name: str) -> T:
        """The factory registered as `name`; KeyError with close matches when missing."""
        self._load()
        if name not in self._entries:
            close = difflib.get_close_matches(name, self._entries, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise KeyError(f"unknown {self.kind} {name!r}{hint} (known: {', '.join(self.names())})")
        return self._entries[name]

    def names(self) -> list[str]:
        """All registered names, sorted."""
        self._load()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self._load()
        return len(self._entries)


BACKBONES: Registry = Registry("backbone", "detection.backbones")
NECKS: Registry = Registry("neck", "detection.necks")
DETECTORS: Registry = Registry("detector", "detection.models")
TRACKERS: Registry = Registry("tracker", "detection.tracking")
