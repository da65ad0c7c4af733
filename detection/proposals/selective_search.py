"""Selective search (Uijlings et al., IJCV 2013) in numpy: Felzenszwalb regions grouped hierarchically.

Each strategy (colour space, k, similarity set) gives a hierarchy; boxes are ranked by position x random number.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from skimage.segmentation import felzenszwalb

from datasets.core.errors import UserError
from detection.proposals.base import PROPOSERS, ProposalConfig
from detection.proposals.frame import ScaledProposer, unique_rows
from detection.proposals.hierarchy import group
from detection.proposals.region_features import colour_bins, colour_space, describe, texture_bins

SIGMA = 0.8  # Felzenszwalb's pre-smoothing, as in the paper


@dataclass(frozen=True)
class Strategies:
    """A mode: every combination of colour space, Felzenszwalb k (also its min_size) and similarity set."""

    spaces: tuple[str, ...]
    ks: tuple[int, ...]
    similarities: tuple[str, ...]  # letters of C (colour), T (texture), S (size), F (fill)


MODES = {
    "single": Strategies(("hsv",), (100,), ("CTSF",)),
    "fast": Strategies(("hsv", "lab"), (50, 100), ("CTSF", "TSF")),
    "quality": Strategies(("hsv", "lab", "rgi", "h", "i"), (50, 100, 150, 300), ("CTSF", "TSF", "F", "S")),
}


def segment(space_image: np.ndarray, k: int) -> np.ndarray:
    """Felzenszwalb regions of uint8 [H, W, C] with scale k and min_size k -> labels [H, W] int64 0..R-1."""
    labels = felzenszwalb(space_image, scale=k, sigma=SIGMA, min_size=k, channel_axis=-1).astype(np.int64)
    if np.bincount(labels.ravel()).all():  # scikit-image numbers them 0..R-1 already; check, cheaply
        return labels
    return np.unique(labels, return_inverse=True)[1].reshape(labels.shape)


def space_hierarchies(rgb: np.ndarray, space: str, modes: Strategies) -> list[np.ndarray]:
    """Boxes of every hierarchy in one colour space: one list entry [2R-1, 4] per (k, similarity set)."""
    image = colour_space(rgb, space)
    needs_colour = any("C" in s for s in modes.similarities)
    needs_texture = any("T" in s for s in modes.similarities)
    colour = colour_bins(image) if needs_colour else None
    texture = texture_bins(image) if needs_texture else None
    pixels = rgb.shape[0] * rgb.shape[1]
    hierarchies = []
    for k in modes.ks:
        regions = describe(segment(image, k), colour, texture)
        hierarchies += [group(regions, similarity, pixels) for similarity in modes.similarities]
    return hierarchies


def rank(hierarchies: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Merge hierarchies (each [n, 4] in creation order) into boxes best first, duplicates removed.

    A box's score is its position in its hierarchy (1 = last merged, the whole image) times a uniform random
    number in [0, 1); lowest first, as in the paper.
    """
    boxes = np.concatenate(hierarchies)
    scores = np.concatenate([np.arange(len(h), 0, -1) * rng.random(len(h)) for h in hierarchies])
    return unique_rows(boxes[np.argsort(scores, kind="stable")])


class SelectiveSearch(ScaledProposer):
    """Selective search in mode single | fast | quality; deterministic (the ranking's RNG is seeded per call)."""

    def __init__(self, mode: str = "fast", max_side: int = 500, min_size: int = 4, seed: int = 0) -> None:
        if mode not in MODES:
            raise UserError(f"proposals.mode: unknown selective search mode {mode!r} (known: {', '.join(MODES)})")
        super().__init__(max_side, min_size)
        self.mode = mode
        self.seed = seed

    def propose(self, image: np.ndarray) -> np.ndarray:
        """RGB uint8 [h, w, 3] -> boxes [P, 4] xyxy (x2, y2 exclusive), best first."""
        modes = MODES[self.mode]
        hierarchies = []
        for space in modes.spaces:
            hierarchies += space_hierarchies(image, space, modes)
        return rank(hierarchies, np.random.default_rng(self.seed))


@PROPOSERS.register("selective_search")
def selective_search(cfg: ProposalConfig) -> SelectiveSearch:
    """Selective search with `cfg.mode`, on images shrunk to `cfg.max_side`."""
    return SelectiveSearch(cfg.mode, cfg.max_side, cfg.min_size)
