"""The one exception type for user mistakes, and the CLI wrapper that prints it.

A UserError ends a command with one clear line on stderr and exit status 1, never a traceback; a usage error
(a wrong flag, a missing argument) ends it as argparse does: the usage, the error, status 2.
"""
from __future__ import annotations

import functools
import sys
from typing import Callable


class UserError(Exception):
    """A mistake in the user's input (file, field, key, value): shown as one line, exit 1."""


def cli_main(func: Callable[..., int | None]) -> Callable[..., int]:
    """Wrap a CLI entry point: UserError -> 'error: ...' on stderr and status 1; argparse's exit (2 for a usage
    error, 0 after --help) -> that status, returned."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs) -> int:
        try:
            return int(func(*args, **kwargs) or 0)
        except UserError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        except SystemExit as exc:  # argparse: usage errors exit 2, --help 0
            if isinstance(exc.code, int):
                return exc.code
            raise
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130

    return wrapper
