"""Repeat-factor sampling (LVIS; Detectron2's RepeatFactorTrainingSampler): images holding rare classes are seen
more often in an epoch (data.sampler=repeat_factor, data.repeat_threshold=t).

Per category c, f_c is the fraction of training images that contain it and r_c = max(1, sqrt(t / f_c)); an image's
factor r is the largest r_c of its categories (1 for an image without boxes). Each epoch an image appears
floor(r) times, plus once more with probability r - floor(r) (stochastic rounding), in a shuffled order; both are
drawn from the epoch's seed, so an epoch is the same after a resume, and every Ray Train worker draws the same list
and takes its own shard of it.
"""
from __future__ import annotations

import math
from typing import Iterator, Sequence

import torch
from torch.utils.data import Sampler

from datasets.core.errors import UserError


def category_repeat_factors(image_categories: Sequence[set], threshold: float) -> dict:
    """r_c = max(1, sqrt(threshold / f_c)) per category id, f_c the fraction of images containing c."""
    counts: dict = {}
    for cats in image_categories:
        for c in cats:
            counts[c] = counts.get(c, 0) + 1
    total = max(1, len(image_categories))
    return {c: max(1.0, math.sqrt(threshold / (n / total))) for c, n in counts.items()}


def repeat_factors(image_categories: Sequence[set], threshold: float) -> torch.Tensor:
    """Per image r = max over its categories of r_c (1.0 for an image without any) -> float64 [N]."""
    per_category = category_repeat_factors(image_categories, threshold)
    return torch.tensor([max((per_category[c] for c in cats), default=1.0) for cats in image_categories],
                        dtype=torch.float64)


def dataset_categories(dataset) -> list[set]:
    """The categories of each training image (non-crowd boxes) of a CocoDetection, in its index order."""
    coco = getattr(dataset, "coco", None)
    if coco is None or not hasattr(dataset, "ids"):
        raise UserError("data.sampler=repeat_factor needs a COCO detection training set (a detector's data.train)")
    return [{a["category_id"] for a in coco.imgToAnns.get(image_id, []) if not a.get("iscrowd", 0)}
            for image_id in dataset.ids]


class RepeatFactorSampler(Sampler[int]):
    """Indices of one epoch: each image repeated by its stochastically rounded factor, shuffled, and this rank's
    shard of them (every `world`-th from `rank`, the list padded to a multiple of `world` as DistributedSampler
    pads). Call `set_seed(seed)` before each epoch (the trainer does); the same seed gives the same indices."""

    def __init__(self, factors: torch.Tensor, seed: int = 0, rank: int = 0, world: int = 1) -> None:
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} is not within a world of {world}")
        self.integer = torch.floor(factors)
        self.fraction = factors - self.integer
        self.rank, self.world = rank, world
        self.indices: list[int] = []
        self.set_seed(seed)

    @property
    def expected_length(self) -> float:
        """The mean number of indices an epoch holds over all ranks: the sum of the factors."""
        return float((self.integer + self.fraction).sum())

    def epoch_indices(self, seed: int) -> list[int]:
        """All ranks' indices of the epoch seeded `seed` (stochastic rounding, then a shuffle)."""
        generator = torch.Generator().manual_seed(seed)
        rands = torch.rand(len(self.fraction), generator=generator, dtype=torch.float64)
        repeats = (self.integer + (rands < self.fraction).double()).long()
        indices = torch.repeat_interleave(torch.arange(len(repeats)), repeats)
        return indices[torch.randperm(len(indices), generator=generator)].tolist()

    def set_seed(self, seed: int) -> None:
        indices = self.epoch_indices(seed)
        padding = (-len(indices)) % self.world
        indices += indices[:padding]
        self.indices = indices[self.rank :: self.world]

    def shard(self, rank: int, world: int) -> "RepeatFactorSampler":
        """The same factors for worker `rank` of `world`."""
        return RepeatFactorSampler(self.integer + self.fraction, 0, rank, world)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def build_train_sampler(data_cfg, dataset) -> RepeatFactorSampler | None:
    """The training sampler data.sampler asks for: None for "random" (the loader shuffles), else repeat-factor."""
    if data_cfg.sampler != "repeat_factor":
        return None
    return RepeatFactorSampler(repeat_factors(dataset_categories(dataset), data_cfg.repeat_threshold))


def epoch_length(dataset, sampler: RepeatFactorSampler | None) -> int:
    """Images an epoch is planned with (for the schedule): the dataset's size, or the factors' sum."""
    return len(dataset) if sampler is None else max(1, round(sampler.expected_length))
