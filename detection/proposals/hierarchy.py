"""Selective search's hierarchical grouping: merge the most similar neighbouring regions until one is left.

Similarities (colour, texture, size, fill) are those of Uijlings et al. 2013; a heap with lazy deletion picks pairs.
"""
from __future__ import annotations

import heapq

import numpy as np

from detection.proposals.region_features import Regions

SIMILARITIES = frozenset("CTSF")  # colour, texture, size, fill


class Grouping:
    """The growing hierarchy: slots 0..R-1 are the initial regions, merged regions take slots R, R+1, ...

    sizes [2R-1] pixels, boxes [2R-1, 4] xyxy, histograms [2R-1, K]: the colour and texture histograms side by
    side when both are used (the sum of two histogram intersections is the intersection of the joined ones),
    one of them, or None.
    """

    def __init__(self, regions: Regions, similarity: str, image_pixels: int) -> None:
        unknown = set(similarity) - SIMILARITIES
        if unknown or not similarity:
            raise ValueError(f"similarity {similarity!r}: use letters of {''.join(sorted(SIMILARITIES))}")
        count = len(regions.sizes)
        total = 2 * count - 1
        self.similarity = similarity
        self.pixels = float(image_pixels)
        self.count = count
        self.sizes = grow(regions.sizes, total)
        self.boxes = grow(regions.boxes, total)
        used = [h for letter, h in (("C", regions.colour), ("T", regions.texture)) if letter in similarity]
        self.histograms = grow(np.concatenate(used, axis=1), total) if used else None
        self.neighbours: list[set[int] | None] = [set() for _ in range(count)]
        for i, j in regions.pairs.tolist():
            self.neighbours[i].add(j)
            self.neighbours[j].add(i)

    def score(self, a: np.ndarray | int, b: np.ndarray) -> np.ndarray:
        """Similarity [len(b)] of region(s) a with each region of b: the sum of the chosen measures, each in 0..1."""
        total = np.zeros(len(b))
        if self.histograms is not None:
            total += np.minimum(self.histograms[a], self.histograms[b]).sum(axis=1)
        both = self.sizes[a] + self.sizes[b]
        if "S" in self.similarity:
            total += 1 - both / self.pixels
        if "F" in self.similarity:
            lo = np.minimum(self.boxes[a, :2], self.boxes[b, :2])
            hi = np.maximum(self.boxes[a, 2:], self.boxes[b, 2:])
            span = hi - lo
            total += 1 - (span[:, 0] * span[:, 1] - both) / self.pixels
        return total

    def merge(self, a: int, b: int, t: int) -> list[int]:
        """Region t := a + b (size-weighted histograms, union box); returns t's neighbours."""
        sa, sb = self.sizes[a], self.sizes[b]
        self.sizes[t] = sa + sb
        if self.histograms is not None:
            self.histograms[t] = (self.histograms[a] * sa + self.histograms[b] * sb) / (sa + sb)
        self.boxes[t, :2] = np.minimum(self.boxes[a, :2], self.boxes[b, :2])
        self.boxes[t, 2:] = np.maximum(self.boxes[a, 2:], self.boxes[b, 2:])
        around = self.neighbours[a] | self.neighbours[b]
        around.discard(a)
        around.discard(b)
        for k in around:
            others = self.neighbours[k]
            others.discard(a)
            others.discard(b)
            others.add(t)
        self.neighbours[a] = self.neighbours[b] = None  # merged away: heap entries naming them are stale
        self.neighbours.append(around)
        return list(around)


def grow(values: np.ndarray, total: int) -> np.ndarray:
    """A copy of values [R, ...] with room for `total` rows (the merged regions)."""
    out = np.empty((total,) + values.shape[1:], values.dtype)
    out[: len(values)] = values
    return out


def group(regions: Regions, similarity: str, image_pixels: int) -> np.ndarray:
    """All 2R-1 boxes [2R-1, 4] xyxy of the hierarchy in creation order: the R initial regions, then each merge
    (the last is the whole image when the regions are connected). `similarity` is letters of CTSF."""
    state = Grouping(regions, similarity, image_pixels)
    pairs = regions.pairs
    scores = state.score(pairs[:, 0], pairs[:, 1]) if len(pairs) else np.zeros(0)
    heap = list(zip((-scores).tolist(), pairs[:, 0].tolist(), pairs[:, 1].tolist()))
    heapq.heapify(heap)
    alive = [True] * state.count
    while heap:
        _, a, b = heapq.heappop(heap)
        if not (alive[a] and alive[b]):
            continue  # lazy deletion: one of the pair was merged since this entry was pushed
        t = len(alive)
        alive[a] = alive[b] = False
        alive.append(True)
        around = state.merge(a, b, t)
        if around:
            others = np.array(around)
            for value, k in zip((-state.score(t, others)).tolist(), around):
                heapq.heappush(heap, (value, k, t))
    return state.boxes[: len(alive)]
