"""Helpers shared by the tests/detection files (imported by name: pytest puts this folder on sys.path).

Not a conftest: tests/conftest.py and tests/*/conftest.py all import as the module `conftest`,
so `from conftest import ...` would depend on collection order.
"""
from __future__ import annotations

from tiny_run import DEMO, ROOT, tiny_config  # noqa: F401  (re-exported for the tests here)


def overrides_list(cfg_items: dict[str, str]) -> list[str]:
    return [f"{k}={v}" for k, v in cfg_items.items()]
