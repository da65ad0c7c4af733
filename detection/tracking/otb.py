"""OTB-style sequence folders (frames + groundtruth_rect.txt) and the one-pass evaluation of a single-object tracker.

A sequence folder holds frames/ (or img/, as OTB) and one `x,y,w,h` line per frame; `datasets sequences` writes them.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from datasets.core.errors import UserError
from datasets.core.images import list_images, read_rgb
from detection.tracking.base import SingleObjectTracker
from detection.tracking.boxes import xywh_to_xyxy, xyxy_to_xywh
from detection.tracking.metrics import sot_metrics
from detection.tracking.mot_io import read_rects

GROUND_TRUTH = "groundtruth_rect.txt"
FRAME_FOLDERS = ("frames", "img")


@dataclass
class Sequence:
    """One target through a video: its frame files in order and its ground-truth boxes [T, 4] xywh (OTB)."""

    name: str
    frames: list[Path]
    boxes: np.ndarray

    def image(self, index: int) -> np.ndarray:
        """Frame `index` as RGB uint8 [H, W, 3]."""
        return read_rgb(self.frames[index])


def read_sequence(folder: str | os.PathLike) -> Sequence:
    """A sequence folder; UserError naming it when the frames or boxes are missing or their counts differ."""
    folder = Path(folder)
    frames_dir = next((folder / sub for sub in FRAME_FOLDERS if (folder / sub).is_dir()), None)
    if frames_dir is None:
        raise UserError(f"{folder}: a sequence needs its frames in {' or '.join(FRAME_FOLDERS)}/")
    frames = [frames_dir / rel for rel in list_images(frames_dir)]
    boxes = read_rects(folder / GROUND_TRUTH, "ground-truth")
    if not frames or len(frames) != len(boxes):
        raise UserError(f"{folder}: {len(frames)} frames but {len(boxes)} boxes in {GROUND_TRUTH}")
    return Sequence(folder.name, frames, boxes)


def find_sequences(root: str | os.PathLike) -> list[Sequence]:
    """The sequence at `root`, or every sequence folder directly below it (sorted by name)."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"sequences folder not found: {root}")
    if (root / GROUND_TRUTH).is_file():
        return [read_sequence(root)]
    folders = sorted(p for p in root.iterdir() if (p / GROUND_TRUTH).is_file())
    if not folders:
        raise UserError(f"{root}: no sequence folders (each with {GROUND_TRUTH}) in it")
    return [read_sequence(folder) for folder in folders]


def track_sequence(tracker: SingleObjectTracker, sequence: Sequence) -> tuple[np.ndarray, float]:
    """One-pass evaluation's run: init on frame 1's ground truth, update on the rest. Returns the boxes [T, 4]
    xywh (frame 1's is its ground truth) and the seconds spent in `update`."""
    tracker.init(sequence.image(0), xywh_to_xyxy(sequence.boxes[0])[0])
    boxes, seconds = [sequence.boxes[0]], 0.0
    for index in range(1, len(sequence.frames)):
        image = sequence.image(index)
        started = time.perf_counter()
        box, _score = tracker.update(image)
        seconds += time.perf_counter() - started
        boxes.append(xyxy_to_xywh(box)[0])
    return np.array(boxes), seconds


def evaluate_sequences(tracker: SingleObjectTracker, sequences: list[Sequence], progress: bool = False) -> dict:
    """Mean over sequences of success_auc, precision_20 and mean_iou, the mean success and precision curves
    (for success_plot), and the tracker's frames per second (updates only)."""
    results, updates, seconds = [], 0, 0.0
    for sequence in tqdm(sequences, desc="track", disable=None if progress else True, leave=False):
        boxes, spent = track_sequence(tracker, sequence)
        results.append(sot_metrics(sequence.boxes, boxes))
        updates, seconds = updates + len(sequence.frames) - 1, seconds + spent
    mean = {key: float(np.mean([r[key] for r in results])) for key in ("success_auc", "precision_20", "mean_iou")}
    curves = {key: np.mean([r[key] for r in results], axis=0).round(6).tolist() for key in ("success", "precision")}
    return {**mean, **curves, "sequences": len(sequences), "frames": int(sum(r["frames"] for r in results)),
            "fps": updates / max(seconds, 1e-9)}
