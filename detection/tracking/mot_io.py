"""Tracking text files: MOTChallenge (gt, results, public detections) and OTB groundtruth_rect / results.

A malformed line is a UserError naming the file and the line number; boxes stay [x, y, w, h] here.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from datasets.core.errors import UserError

SEPARATORS = re.compile(r"[,\s]+")


@dataclass
class MotRows:
    """A MOTChallenge file as columns: frames [N] (from 1), ids [N], boxes [N, 4] xywh, scores [N]
    (gt: the 'considered' flag), classes [N] (-1 when absent), visibility [N] (1 when absent)."""

    frames: np.ndarray
    ids: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray
    visibility: np.ndarray

    def __len__(self) -> int:
        return len(self.frames)

    def select(self, keep: np.ndarray) -> "MotRows":
        """The rows where `keep` (bool [N]) is true."""
        return MotRows(*(column[keep] for column in (self.frames, self.ids, self.boxes, self.scores,
                                                     self.classes, self.visibility)))

    def by_frame(self) -> dict[int, np.ndarray]:
        """Row indices of each frame number."""
        order = np.argsort(self.frames, kind="stable")
        frames, starts = np.unique(self.frames[order], return_index=True)
        return {int(f): part for f, part in zip(frames, np.split(order, starts[1:]))}


def read_lines(path: str | os.PathLike, what: str) -> list[tuple[int, str]]:
    """(line number, text) of the file's non-empty lines; UserError when it is missing or not text."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a UTF-8 text file") from None
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def parse_numbers(path: Path, number: int, line: str, least: int) -> list[float]:
    """The line's comma- (or space-) separated numbers, at least `least` of them, all finite."""
    fields = [f for f in SEPARATORS.split(line) if f]
    try:
        values = [float(f) for f in fields]
    except ValueError:
        values = []
    if len(values) < least or not all(math.isfinite(v) for v in values):
        raise UserError(f"{path}, line {number}: expected at least {least} comma-separated numbers, got {line!r}")
    return values


def mot_row(path: Path, number: int, line: str) -> list[float]:
    """frame, id, x, y, w, h, score, class, visibility of one MOTChallenge line (defaults filled in)."""
    values = parse_numbers(path, number, line, 6)
    frame, track_id, w, h = values[0], values[1], values[4], values[5]
    if frame < 1 or frame != int(frame) or track_id != int(track_id):
        raise UserError(f"{path}, line {number}: frame must be a whole number from 1 and id a whole number, "
                        f"got {line!r}")
    if w < 0 or h < 0:
        raise UserError(f"{path}, line {number}: box width and height must not be negative, got {line!r}")
    rest = values[6:9] + [1.0, -1.0, 1.0][len(values[6:9]):]
    return values[:6] + rest


def read_mot(path: str | os.PathLike, what: str = "tracking") -> MotRows:
    """Read a MOTChallenge file (frame,id,x,y,w,h[,score[,class[,visibility]]] per line)."""
    rows = [mot_row(Path(path), n, line) for n, line in read_lines(path, what)]
    table = np.array(rows, dtype=np.float64).reshape(-1, 9)
    return MotRows(table[:, 0].astype(np.int64), table[:, 1].astype(np.int64), table[:, 2:6].copy(),
                   table[:, 6].copy(), table[:, 7].astype(np.int64), table[:, 8].copy())


def read_rects(path: str | os.PathLike, what: str = "OTB") -> np.ndarray:
    """OTB boxes [N, 4] xywh, one `x,y,w,h` line per frame (commas, tabs or spaces between)."""
    path = Path(path)
    rects = [parse_numbers(path, n, line, 4)[:4] for n, line in read_lines(path, what)]
    if not rects:
        raise UserError(f"{path}: no boxes in this file")
    return np.array(rects, dtype=np.float64)


def result_line(frame: int, track_id: int, box_xywh, score: float) -> str:
    """One MOTChallenge results line: frame,id,x,y,w,h,score,-1,-1,-1."""
    x, y, w, h = (float(v) for v in box_xywh)
    return f"{frame},{track_id},{x:.2f},{y:.2f},{w:.2f},{h:.2f},{score:.4f},-1,-1,-1"
