"""Benchmark of the region proposal methods on a synthetic shapes split it makes itself (fixed seed).

Per method: recall at IoU 0.5 and 0.7 of the top 100, 500 and 2000 proposals, proposals per image, ms per image
(one process; OMP_NUM_THREADS=1 for one core). One JSON line per method, then a table.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from datasets.synthetic.shapes import make_shapes
from detection.proposals import ProposalConfig, build_proposer

TOPS = (100, 500, 2000)
THRESHOLDS = (0.5, 0.7)


def load_split(root: Path, count: int, size: int, seed: int, hard: bool) -> list[tuple[np.ndarray, np.ndarray]]:
    """`count` shapes images (RGB) of `size` px with ground-truth boxes [K, 4] xyxy; shapes 1/8 to 7/16 of the
    side (the demo set's 16-56 px at 128), or with `hard` 1/16 to 3/8 of it, up to 8 per image, overlapping."""
    if hard:
        options = {"min_size": max(4, size // 16), "max_size": size * 3 // 8, "max_objects": 8, "occlusion": True}
    else:
        options = {"min_size": max(8, size // 8), "max_size": max(16, size * 7 // 16)}
    coco = json.loads(make_shapes(root, count, seed=seed, image_size=size, **options).read_text())
    split = []
    for im in coco["images"]:
        image = cv2.cvtColor(cv2.imread(str(root / "images" / im["file_name"])), cv2.COLOR_BGR2RGB)
        xywh = np.array([a["bbox"] for a in coco["annotations"] if a["image_id"] == im["id"]], np.float64)
        xywh = xywh.reshape(-1, 4)
        split.append((image, np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)))
    return split


def best_iou(truth: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """For each ground-truth box [K, 4], its best IoU with the proposals [P, 4] (both xyxy)."""
    if len(boxes) == 0:
        return np.zeros(len(truth))
    lo = np.maximum(truth[:, None, :2], boxes[None, :, :2])
    hi = np.minimum(truth[:, None, 2:], boxes[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=2)
    areas = np.prod(truth[:, 2:] - truth[:, :2], axis=1)[:, None] + np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
    return (inter / (areas - inter)).max(axis=1)


def measure(cfg: ProposalConfig, split: list, hard: bool) -> dict:
    """Recall per (top, IoU), mean proposals and ms per image of one method on the split."""
    proposer = build_proposer(cfg)
    proposer(split[0][0])  # warm-up: imports, caches
    hits = {(top, t): 0 for top in TOPS for t in THRESHOLDS}
    seconds, counts, objects = 0.0, [], 0
    for image, truth in split:
        start = time.perf_counter()
        boxes = proposer(image)
        seconds += time.perf_counter() - start
        counts.append(len(boxes))
        objects += len(truth)
        for top in TOPS:
            ious = best_iou(truth, boxes[:top].astype(np.float64))
            for t in THRESHOLDS:
                hits[top, t] += int((ious >= t).sum())
    name = cfg.method + (f":{cfg.mode}" if cfg.method == "selective_search" else "")
    row = {"benchmark": "proposals", "method": name, "split": "hard" if hard else "demo", "images": len(split),
           "size": split[0][0].shape[0], "max_side": cfg.max_side, "objects": objects,
           "ms_per_image": round(1000 * seconds / len(split), 1),
           "proposals_per_image": round(float(np.mean(counts)), 1)}
    row.update({f"recall@{t}_top{top}": round(hits[top, t] / max(objects, 1), 3) for (top, t) in hits})
    return row


def table(rows: list[dict]) -> str:
    """The rows as an aligned text table."""
    recalls = [f"recall@{t}_top{top}" for t in THRESHOLDS for top in TOPS]
    columns = ["method", "ms_per_image", "proposals_per_image"] + recalls
    header = ["method", "ms/img", "props"] + [f"R{int(t * 100)}@{top}" for t in THRESHOLDS for top in TOPS]
    lines = [header] + [[str(row[c]) for c in columns] for row in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)) for line in lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--size", type=int, default=128, help="image side in pixels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-side", type=int, default=500)
    parser.add_argument("--methods", default="selective_search:fast,selective_search:quality,sliding_window",
                        help="comma-separated method[:mode]; rpn is added when --checkpoint is given")
    parser.add_argument("--hard", action="store_true", help="smaller, more, overlapping shapes (occlusion)")
    parser.add_argument("--checkpoint", default="", help="a Faster R-CNN checkpoint: also measure its RPN")
    args = parser.parse_args()
    methods = [m for m in args.methods.split(",") if m] + (["rpn"] if args.checkpoint else [])
    with tempfile.TemporaryDirectory() as tmp:
        split = load_split(Path(tmp), args.images, args.size, args.seed, args.hard)
    rows = []
    for entry in methods:
        method, _, mode = entry.partition(":")
        cfg = ProposalConfig(method=method, mode=mode or "fast", max_side=args.max_side, checkpoint=args.checkpoint)
        rows.append(measure(cfg, split, args.hard))
        print(json.dumps(rows[-1]), flush=True)
    print(table(rows))


if __name__ == "__main__":
    main()
