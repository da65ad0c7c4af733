"""The user-error type and CLI wrapper, re-exported from datasets.core.errors (the ground floor).

Kept so scripts that import detection.errors keep working: these are the same objects.
"""
from datasets.core.errors import UserError, cli_main

__all__ = ["UserError", "cli_main"]
