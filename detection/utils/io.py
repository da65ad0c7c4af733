"""Atomic file writes: write to a temporary name in the same folder, then rename.

An interrupted writer leaves the old file (or nothing), never a half-written one.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w") -> Iterator[IO]:
    """Open a temporary file beside `path`; on clean exit fsync and rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(path: str | os.PathLike, data: Any, indent: int | None = None) -> None:
    """Write `data` as JSON to `path` atomically."""
    with atomic_open(path, "w") as handle:
        json.dump(data, handle, indent=indent)


def read_torch_file(path: str | os.PathLike, what: str) -> Any:
    """torch.load(weights_only=True) on CPU; UserError naming the file when missing or unreadable.

    `what` names the kind of file in messages ("checkpoint", "weights file").
    """
    import torch  # late: this module stays importable without torch

    from detection.errors import UserError

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's problem
        reason = unpickler_reason(str(exc)) or type(exc).__name__
        raise UserError(f"{path}: not a readable {what} ({reason})") from None


def unpickler_reason(message: str) -> str:
    """The useful part of torch.load's error: the unpickler's own line, not its advice to load unsafely."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    for i, line in enumerate(lines):
        if line.endswith("WeightsUnpickler error:") and i + 1 < len(lines):
            return f"not plain tensor data: {lines[i + 1]}"
    return lines[0] if lines and "weights_only" not in lines[0] else ""


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write raw bytes to `path` atomically."""
    with atomic_open(path, "wb") as handle:
        handle.write(data)
