"""Benchmark of appearance in multi-object tracking: ByteTrack on generated crossing sequences (public detections)
with and without a re-id embedder's cosine cost; prints MOTA, IDF1, HOTA of both as one JSON line.

The embedder is --reid CKPT, or a reid_tiny model trained here for --train-seconds on generated shapes.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_mot import as_rows, by_frame, joined  # noqa: E402

from datasets.synthetic.public_detections import DetectionNoise  # noqa: E402
from datasets.synthetic.sequences import make_sequences  # noqa: E402
from datasets.synthetic.shapes import make_shapes  # noqa: E402
from detection.config import load_config  # noqa: E402
from detection.tasks import build_trainer  # noqa: E402
from detection.tracking.boxes import xyxy_to_xywh  # noqa: E402
from detection.tracking.bytetrack import ByteTracker, ByteTrackOptions  # noqa: E402
from detection.tracking.load import load_embedder  # noqa: E402
from detection.tracking.metrics import mot_metrics  # noqa: E402
from detection.tracking.mot_io import read_mot  # noqa: E402

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "reid_tiny.yaml"


def train_reid(shapes: Path, out: Path, minutes: float) -> Path:
    """configs/reid_tiny.yaml on `shapes` (train.json, val.json), stopped after `minutes`; its best.pt."""
    items = {"output_dir": out, "device": "cpu", "train.max_minutes": minutes,
             "data.train.annotations": shapes / "train.json", "data.val.annotations": shapes / "val.json",
             "data.train.images": shapes / "images", "data.val.images": shapes / "images"}
    build_trainer(load_config(CONFIG, [f"{k}={v}" for k, v in items.items()]), progress=False).fit()
    return out / "best.pt"


def track(folder: Path, detections: dict, frames: int, embed, options: ByteTrackOptions) -> list[list[float]]:
    """Result rows (frame, id, x, y, w, h) of one sequence; with `embed`, each detection's crop embedding."""
    tracker, rows = ByteTracker(options), []
    empty = (np.zeros((0, 4)), np.zeros(0))
    images = sorted((folder / "frames").iterdir())
    for frame in range(1, frames + 1):
        boxes, scores = detections.get(frame, empty)
        embeddings = None
        if embed is not None:
            embeddings = embed(cv2.cvtColor(cv2.imread(str(images[frame - 1])), cv2.COLOR_BGR2RGB), boxes)
        tracks = tracker.update(boxes, scores, embeddings=embeddings)
        rows += [[frame, t.track_id, *xyxy_to_xywh(t.box)[0]] for t in tracks]
    return rows


def evaluate(folders: list[Path], frames: int, embed, options: ByteTrackOptions) -> dict:
    gts = [read_mot(folder / "gt" / "gt.txt") for folder in folders]
    started = time.perf_counter()
    results = [as_rows(track(f, by_frame(read_mot(f / "det" / "det.txt")), frames, embed, options))
               for f in folders]
    seconds = time.perf_counter() - started
    m = mot_metrics(joined(gts), joined(results))
    keys = ("mota", "idf1", "hota", "assa", "id_switches")
    return {**{k: round(m[k], 4) if isinstance(m[k], float) else m[k] for k in keys},
            "fps": round(len(folders) * frames / seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reid", help="a re-id checkpoint; default: train reid_tiny here")
    parser.add_argument("--train-minutes", type=float, default=1.0)
    parser.add_argument("--appearance-weight", type=float, nargs="+", default=[0.25, 0.5],
                        help="ByteTrack's appearance_weight: cost = (1 - w)(1 - IoU) + w cosine distance")
    parser.add_argument("--max-appearance-distance", type=float, default=0.5,
                        help="ByteTrack's gate: pairs of larger cosine distance never match (2: no gate)")
    parser.add_argument("--sequences", type=int, default=4)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--objects", type=int, default=6)
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        shapes = Path(tmp) / "shapes"
        annotations = make_shapes(shapes, 200, seed=args.seed)
        split_shapes(annotations, shapes)
        checkpoint = args.reid or train_reid(shapes, Path(tmp) / "reid", args.train_minutes)
        folders = make_sequences(annotations, shapes / "images", Path(tmp) / "seqs", args.sequences,
                                 seed=args.seed + 1, frames=args.frames, objects=args.objects, size=args.size,
                                 detections=DetectionNoise(jitter=0.04, drop=0.1, false_alarms=0.3))
        without = evaluate(folders, args.frames, None, ByteTrackOptions())
        embed = load_embedder(checkpoint)
        gate = args.max_appearance_distance
        with_reid = {f"weight_{w:g}": evaluate(folders, args.frames, embed, ByteTrackOptions(
            appearance_weight=w, max_appearance_distance=gate)) for w in args.appearance_weight}
    print(json.dumps({"benchmark": "mot_reid", "without_appearance": without, "with_appearance": with_reid,
                      "reid": args.reid or f"reid_tiny trained {args.train_minutes} min",
                      "max_appearance_distance": args.max_appearance_distance,
                      "sequences": args.sequences, "frames": args.frames, "objects": args.objects}))


def split_shapes(annotations: Path, shapes: Path) -> None:
    """train.json (images but the last 40) and val.json (the last 40) beside `annotations`."""
    data = json.loads(Path(annotations).read_text())
    ids = sorted(image["id"] for image in data["images"])
    for name, keep in (("train", set(ids[:-40])), ("val", set(ids[-40:]))):
        part = {**data, "images": [i for i in data["images"] if i["id"] in keep],
                "annotations": [a for a in data["annotations"] if a["image_id"] in keep]}
        (shapes / f"{name}.json").write_text(json.dumps(part))


if __name__ == "__main__":
    main()
