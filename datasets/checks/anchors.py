"""`anchors`: k-means with IoU distance over a COCO file's box sizes as letterboxed to the model's input.

Prints the anchors (smallest first), their mean best IoU against the boxes, and a `model.yolo.anchors=` line.
"""
from __future__ import annotations

import json

import numpy as np

from datasets.core.coco import index_coco, load_coco
from datasets.core.errors import UserError


def letterboxed_sizes(data: dict, input_size: int, source: str = "input") -> np.ndarray:
    """[N, 2] widths and heights of the non-crowd boxes, scaled as letterboxing to input_size scales them."""
    images, _, by_image = index_coco(data, source)
    sizes = []
    for image_id, anns in by_image.items():
        image = images[image_id]
        scale = input_size / max(image["width"], image["height"])
        sizes += [(a["bbox"][2] * scale, a["bbox"][3] * scale) for a in anns
                  if not a.get("iscrowd") and a["bbox"][2] > 0 and a["bbox"][3] > 0]
    return np.asarray(sizes, dtype=np.float64).reshape(-1, 2)


def shape_iou(sizes: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """IoU of boxes [N, 2] and anchors [K, 2] (w, h) sharing a centre -> [N, K]."""
    inter = np.minimum(sizes[:, None, 0], anchors[None, :, 0]) * np.minimum(sizes[:, None, 1], anchors[None, :, 1])
    union = sizes[:, 0:1] * sizes[:, 1:2] + (anchors[:, 0] * anchors[:, 1])[None] - inter
    return inter / union


def kmeans_anchors(sizes: np.ndarray, k: int, seed: int = 0, iterations: int = 300) -> np.ndarray:
    """k cluster centres [k, 2] (sorted by area) minimising 1 - IoU; k-means++ start, mean update."""
    if len(sizes) < k:
        raise UserError(f"{len(sizes)} boxes cannot make {k} anchors; lower --k")
    rng = np.random.default_rng(seed)
    centres = [sizes[rng.integers(len(sizes))]]
    for _ in range(1, k):  # k-means++: far (in 1 - IoU) from the centres so far
        distance = 1 - shape_iou(sizes, np.asarray(centres)).max(axis=1)
        weights = distance ** 2 if distance.sum() > 0 else np.ones(len(sizes))
        centres.append(sizes[rng.choice(len(sizes), p=weights / weights.sum())])
    centres = np.asarray(centres)
    assigned = None
    for _ in range(iterations):
        nearest = shape_iou(sizes, centres).argmax(axis=1)
        if assigned is not None and np.array_equal(nearest, assigned):
            break
        assigned = nearest
        centres = np.asarray([sizes[nearest == j].mean(axis=0) if np.any(nearest == j) else centres[j]
                              for j in range(k)])
    return centres[np.argsort(centres.prod(axis=1))]


def config_line(anchors: np.ndarray, levels: int) -> str:
    """`model.yolo.anchors=[[w,h,...], ...]`: anchors split evenly over `levels`, smallest on the finest."""
    rounded = np.maximum(1, np.round(anchors)).astype(int)
    groups = np.array_split(rounded, levels)
    return "model.yolo.anchors=" + json.dumps([g.reshape(-1).tolist() for g in groups]).replace(" ", "")


def run(args) -> None:
    """CLI: python -m datasets anchors FILE --k 9 --input-size S [--levels 3]."""
    if args.k < 1 or args.input_size < 1 or not 1 <= args.levels <= args.k or args.k % args.levels:
        raise UserError(f"--k {args.k} must be a positive multiple of --levels {args.levels}, "
                        f"and --input-size positive ({args.input_size})")
    sizes = letterboxed_sizes(load_coco(args.file), args.input_size, str(args.file))
    anchors = kmeans_anchors(sizes, args.k, args.seed)
    mean_iou = float(shape_iou(sizes, anchors).max(axis=1).mean())
    print(f"{len(sizes)} boxes letterboxed to {args.input_size} px, {args.k} anchors (w x h, smallest first):")
    print("  " + "  ".join(f"{w:.0f}x{h:.0f}" for w, h in anchors))
    print(f"mean best IoU of a box with its nearest anchor: {mean_iou:.3f}")
    print(config_line(anchors, args.levels))
