"""Benchmark of the multi-object tracker on generated crossing sequences, in the public-detections setting.

det/det.txt of `datasets sequences`: ground-truth boxes jittered, some dropped, weak where half hidden, plus false
alarms. Prints MOTA, IDF1, HOTA and tracker frames/s (ByteTrack, and without its low-score stage) as one JSON line.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from datasets.synthetic.public_detections import DetectionNoise
from datasets.synthetic.sequences import make_sequences
from datasets.synthetic.shapes import make_shapes
from detection.tracking.boxes import xywh_to_xyxy, xyxy_to_xywh
from detection.tracking.bytetrack import ByteTracker, ByteTrackOptions
from detection.tracking.metrics import mot_metrics
from detection.tracking.mot_io import MotRows, read_mot


def by_frame(detections: MotRows) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """frame -> (boxes [N, 4] xyxy, scores [N]) of a public detections file."""
    return {f: (xywh_to_xyxy(detections.boxes[i]), detections.scores[i]) for f, i in detections.by_frame().items()}


def track(detections: dict, frames: int, options: ByteTrackOptions) -> tuple[list[list[float]], float]:
    """Result rows (frame, id, x, y, w, h) of one sequence and the seconds spent in the tracker."""
    tracker, rows, seconds = ByteTracker(options), [], 0.0
    empty = (np.zeros((0, 4)), np.zeros(0))
    for frame in range(1, frames + 1):
        boxes, scores = detections.get(frame, empty)
        started = time.perf_counter()
        tracks = tracker.update(boxes, scores)
        seconds += time.perf_counter() - started
        rows += [[frame, t.track_id, *xyxy_to_xywh(t.box)[0]] for t in tracks]
    return rows, seconds


def joined(parts: list[MotRows]) -> MotRows:
    """Several sequences as one: frames and ids shifted so that no two sequences share any."""
    columns = []
    for k, part in enumerate(parts):
        columns.append((part.frames + 100_000 * k, part.ids + 100_000 * k, part.boxes, part.scores,
                        part.classes, part.visibility))
    return MotRows(*(np.concatenate(c) for c in zip(*columns)))


def as_rows(rows: list[list[float]]) -> MotRows:
    table = np.array(rows, dtype=np.float64).reshape(-1, 6)
    n = len(table)
    return MotRows(table[:, 0].astype(np.int64), table[:, 1].astype(np.int64), table[:, 2:6], np.ones(n),
                   np.full(n, -1), np.ones(n))


def evaluate(gts: list[MotRows], detections: list[dict], frames: int, options: ByteTrackOptions) -> dict:
    """MOTA, IDF1, HOTA, id switches over all sequences, and the tracker's frames per second."""
    results, seconds = [], 0.0
    for dets in detections:
        rows, spent = track(dets, frames, options)
        results.append(as_rows(rows))
        seconds += spent
    m = mot_metrics(joined(gts), joined(results))
    keys = ("mota", "idf1", "hota", "deta", "assa", "id_switches", "false_positives", "misses")
    return {**{k: round(m[k], 4) if isinstance(m[k], float) else m[k] for k in keys},
            "fps": round(len(gts) * frames / seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sequences", type=int, default=4)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--objects", type=int, default=6)
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--noise", type=float, default=0.04, help="box jitter, fraction of the box's size")
    parser.add_argument("--drop", type=float, default=0.1, help="share of visible objects not detected")
    parser.add_argument("--false-alarms", type=float, default=0.3, help="false boxes per frame (mean)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    noise = DetectionNoise(jitter=args.noise, drop=args.drop, false_alarms=args.false_alarms)
    with tempfile.TemporaryDirectory() as tmp:
        annotations = make_shapes(Path(tmp) / "shapes", 30, seed=args.seed)
        folders = make_sequences(annotations, Path(tmp) / "shapes" / "images", Path(tmp) / "seqs", args.sequences,
                                 seed=args.seed, frames=args.frames, objects=args.objects, size=args.size,
                                 detections=noise)
        gts = [read_mot(folder / "gt" / "gt.txt") for folder in folders]
        detections = [by_frame(read_mot(folder / "det" / "det.txt")) for folder in folders]
    bytetrack = evaluate(gts, detections, args.frames, ByteTrackOptions())
    high_only = evaluate(gts, detections, args.frames, ByteTrackOptions(low_threshold=0.5))
    print(json.dumps({"benchmark": "mot_public_detections", **bytetrack, "without_low_score_stage": high_only,
                      "sequences": args.sequences, "frames": args.frames, "objects": args.objects,
                      "noise": args.noise, "drop": args.drop, "false_alarms": args.false_alarms}))


if __name__ == "__main__":
    main()
