"""Reading torch files as plain data (torch.load with weights_only=True), with errors that name the file.

The atomic writers live in datasets.core.atomic; import them from there.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from datasets.core.errors import UserError


def read_torch_file(path: str | os.PathLike, what: str) -> Any:
    """torch.load(weights_only=True) on CPU; UserError naming the file when missing or unreadable.

    `what` names the kind of file in messages ("checkpoint", "weights file").
    """
    import torch  # late: this module stays importable without torch

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
