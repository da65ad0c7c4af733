"""Perceptual image hashes and near-duplicate groups (OpenCV + numpy): re-encoded, resized or slightly cropped
copies of a picture get close hashes, different pictures far ones.

The hash is a DCT pHash (the 8x8 lowest frequencies of a 32x32 grey thumbnail, one bit each: above the median or
not) with a mask of its reliable bits: a coefficient within NOISE of the median flips with JPEG noise, so a bit
that is weak in both images is not counted. A flat or smooth picture (a plain background, a gradient) has few
reliable bits, so every pair the hash calls close is confirmed by an 8x8 colour thumbnail: two plain pictures of
different colours are not duplicates.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from datasets.core.errors import UserError
from datasets.core.images import image_size, read_bgr

HASH_SIDE = 32  # the grey thumbnail the DCT runs on
BITS_SIDE = 8  # its BITS_SIDE x BITS_SIDE lowest frequencies make the 64-bit hash
NOISE = 4.0  # a coefficient this close to the median (orthonormal DCT, grey levels) is an unreliable bit
THUMB_SIDE = 8  # colour thumbnail side for the confirmation
MAX_DISTANCE = 10  # default: pairs at most this many reliable bits apart (of 64) are candidates
COLOUR_TOLERANCE = 12.0  # default: and their colour thumbnails differ by at most this (mean, grey levels)
BLOCK = 512  # rows of the pairwise distance matrix computed at once


@dataclass
class Signatures:
    """Hashes of N images: bits [N] and reliable-bit masks [N] (uint64), colour thumbnails [N, 192] (float32);
    `errors` maps the index of an image that could not be read to why."""

    bits: np.ndarray
    strong: np.ndarray
    thumbs: np.ndarray
    errors: dict[int, str]


def pack_bits(flags: np.ndarray) -> np.uint64:
    """64 booleans (first = most significant) as one unsigned 64-bit integer."""
    return np.packbits(flags.astype(np.uint8)).view(">u8")[0].astype(np.uint64)


def image_signature(image: np.ndarray) -> tuple[np.uint64, np.uint64, np.ndarray]:
    """(hash bits, reliable-bit mask, colour thumbnail [192]) of a BGR uint8 image [H, W, 3]."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32)
    small = cv2.resize(grey, (HASH_SIDE, HASH_SIDE), interpolation=cv2.INTER_AREA)
    coefficients = cv2.dct(small)[:BITS_SIDE, :BITS_SIDE].reshape(-1)
    median = np.median(coefficients[1:])  # the DC term (mean brightness) would shift the median
    bits = pack_bits(coefficients > median)
    strong = pack_bits(np.abs(coefficients - median) > NOISE)
    thumb = cv2.resize(image, (THUMB_SIDE, THUMB_SIDE), interpolation=cv2.INTER_AREA).astype(np.float32)
    return bits, strong, thumb.reshape(-1)


def read_for_hash(path: str | os.PathLike) -> np.ndarray:
    """An image as BGR uint8, decoded at 1/2, 1/4 or 1/8 of its size when that still leaves 256 px or more
    (JPEG decodes much faster so; the hash sees a 32 px thumbnail anyway). UserError if missing or unreadable."""
    reduce = 1
    try:
        shorter = min(image_size(path))
        reduce = next((factor for factor in (8, 4, 2) if shorter // factor >= 256), 1)
    except UserError:
        pass  # read_bgr names the problem
    return read_bgr(path, reduce=reduce)


def _one(path: Path) -> tuple[np.uint64, np.uint64, np.ndarray] | str:
    try:
        return image_signature(read_for_hash(path))
    except (UserError, OSError, cv2.error) as exc:
        return str(exc)


def compute_signatures(paths: list[Path], workers: int | None = None, progress: bool = True) -> Signatures:
    """Signatures of `paths` (decoded in threads: OpenCV releases the GIL), unreadable ones in `errors`."""
    workers = workers or min(8, os.cpu_count() or 1)
    count = len(paths)
    bits, strong = np.zeros(count, np.uint64), np.zeros(count, np.uint64)
    thumbs = np.zeros((count, THUMB_SIDE * THUMB_SIDE * 3), np.float32)
    errors: dict[int, str] = {}
    with ThreadPoolExecutor(workers) as pool:
        results = pool.map(_one, paths)
        for index, result in enumerate(tqdm(results, total=count, desc="hash", disable=None if progress else True)):
            if isinstance(result, str):
                errors[index] = result
            else:
                bits[index], strong[index], thumbs[index] = result
    return Signatures(bits, strong, thumbs, errors)


def distances(sigs: Signatures, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Hash distances [len(rows), len(cols)]: bits that differ where either image's bit is reliable."""
    differ = sigs.bits[rows, None] ^ sigs.bits[None, cols]
    reliable = sigs.strong[rows, None] | sigs.strong[None, cols]
    return np.bitwise_count(differ & reliable).astype(np.int64)


def colour_difference(sigs: Signatures, i: int, j: int) -> float:
    """Mean absolute difference of two colour thumbnails, in grey levels."""
    return float(np.abs(sigs.thumbs[i] - sigs.thumbs[j]).mean())


def near_pairs(sigs: Signatures, max_distance: int = MAX_DISTANCE,
               colour_tolerance: float = COLOUR_TOLERANCE) -> list[tuple[int, int, int]]:
    """(i, j, distance) with i < j of the readable images that are near-duplicates: hash distance at most
    `max_distance` and colour thumbnails within `colour_tolerance`. All pairs are compared, BLOCK rows at a time
    (numpy: about a second per 50 million pairs)."""
    valid = np.array([i for i in range(len(sigs.bits)) if i not in sigs.errors], dtype=np.int64)
    pairs = []
    for start in range(0, len(valid), BLOCK):
        rows = valid[start : start + BLOCK]
        cols = valid[start:]
        block = distances(sigs, rows, cols)
        for r, c in zip(*np.nonzero(block <= max_distance)):
            i, j = int(rows[r]), int(cols[c])
            if i < j and colour_difference(sigs, i, j) <= colour_tolerance:
                pairs.append((i, j, int(block[r, c])))
    return pairs


def group_pairs(pairs: list[tuple[int, int, int]]) -> list[list[int]]:
    """Connected groups (union-find) of the images the pairs link, each sorted, in order of their first member."""
    parent: dict[int, int] = {}

    def root(item: int) -> int:
        parent.setdefault(item, item)
        while parent[item] != item:
            parent[item] = parent[parent[item]]
            item = parent[item]
        return item

    for i, j, _ in pairs:
        a, b = root(i), root(j)
        if a != b:
            parent[max(a, b)] = min(a, b)
    groups: dict[int, list[int]] = {}
    for item in parent:
        groups.setdefault(root(item), []).append(item)
    return sorted((sorted(members) for members in groups.values()), key=lambda members: members[0])


def group_distance(sigs: Signatures, members: list[int]) -> int:
    """The largest hash distance between two members of a group."""
    index = np.asarray(members, dtype=np.int64)
    return int(distances(sigs, index, index).max())
