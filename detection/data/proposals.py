"""Proposals through the data path: each image's proposals (from a proposals file, or computed once into the
proposal cache) ride along with its ground-truth boxes, so every geometric augmentation moves both alike.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from datasets.core.images import read_bgr

from detection.proposals.base import ProposalConfig

PROPOSAL = -1  # the label a proposal carries through the augmentation pipeline, next to real labels 1..K


def image_sizes(dataset) -> dict[str, tuple[int, int]]:
    """file_name -> (height, width) of a CocoDetection's images: from the annotations file, else the image."""
    sizes = {}
    for im in dataset.coco.imgs.values():
        if "height" in im and "width" in im:
            sizes[im["file_name"]] = (im["height"], im["width"])
        else:
            sizes[im["file_name"]] = read_bgr(Path(dataset.images_dir) / im["file_name"]).shape[:2]
    return sizes


def split_proposals(dataset, file: str, cache_root: str, cfg: ProposalConfig, top_n: int,
                    progress: bool = True) -> dict[str, np.ndarray]:
    """file_name -> proposals [P, 4] xyxy (original pixels, best first, at most top_n) for every image of a
    CocoDetection: read from `file` when given, else from the cache, computing the missing ones in parallel."""
    from detection.proposals.cache import ProposalCache  # imported on use: only R-CNN and Fast R-CNN need them
    from detection.proposals.files import read_proposals
    if file:
        found = read_proposals(file, image_sizes(dataset))
    else:
        cache = ProposalCache(cache_root, cfg)
        names = [dataset.coco.imgs[i]["file_name"] for i in dataset.ids]
        paths = [Path(dataset.images_dir) / name for name in names]
        cache.ensure(paths, progress=progress)
        found = {name: cache.get(path) for name, path in zip(names, paths)}
    return {name: np.asarray(boxes, np.float32).reshape(-1, 4)[:top_n] for name, boxes in found.items()}


def with_proposals(boxes: np.ndarray, labels: np.ndarray, proposals: np.ndarray | None,
                   height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Ground truth followed by the image's proposals (clipped to it) labelled PROPOSAL."""
    if proposals is None or len(proposals) == 0:
        return boxes, labels
    extra = proposals.copy()
    extra[:, [0, 2]] = extra[:, [0, 2]].clip(0, width)
    extra[:, [1, 3]] = extra[:, [1, 3]].clip(0, height)
    extra = extra[(extra[:, 2] > extra[:, 0]) & (extra[:, 3] > extra[:, 1])]
    return (np.concatenate([boxes, extra]).astype(np.float32),
            np.concatenate([labels, np.full(len(extra), PROPOSAL, np.int64)]))


def split_off(boxes: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Transformed boxes and labels -> (ground-truth boxes, their labels, proposals)."""
    is_proposal = labels == PROPOSAL
    return boxes[~is_proposal], labels[~is_proposal], boxes[is_proposal]
