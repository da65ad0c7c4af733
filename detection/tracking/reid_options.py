"""The re-identification embedder's options, read from `model.reid` of a config: network, crops, batches.

`check(prefix)` names the key of a value out of range.
"""
from __future__ import annotations

from dataclasses import dataclass

from datasets.core.errors import UserError


@dataclass
class ReIDOptions:
    """Embedding size, triplet margin, crop side and context, and how a batch is drawn (P objects x K crops)."""

    dim: int = 64  # embedding size
    margin: float = 0.3  # triplet margin, in Euclidean distance between unit vectors (0..2)
    crop_size: int = 64  # crop side, pixels
    context: float = 0.1  # crops span the box plus this fraction of its sides around it
    crops_per_object: int = 2  # K: augmented crops of each object in a batch (positives of each other)
    max_shift: float = 0.1  # crop centre shifts by up to this fraction of the box side, each axis
    scale_jitter: float = 0.1  # crop side varies by up to this fraction
    color: float = 0.5  # probability of a colour jitter on each crop
    objects_per_epoch: int = 0  # items an epoch has (item i: object i mod the count); 0: every object once
    val_objects: int = 200  # val objects whose crops the retrieval evaluation uses, at most

    def check(self, prefix: str) -> None:
        if self.dim < 2 or not 0 < self.margin <= 2 or self.crop_size < 16 or self.crops_per_object < 2:
            raise UserError(f"config keys '{prefix}dim' >= 2, '{prefix}margin' in (0, 2], '{prefix}crop_size' >= 16 "
                            f"and '{prefix}crops_per_object' >= 2, got {self.dim}, {self.margin}, {self.crop_size}, "
                            f"{self.crops_per_object}")
        if not 0 <= self.color <= 1 or self.context < 0 or self.max_shift < 0 or not 0 <= self.scale_jitter < 1:
            raise UserError(f"config keys '{prefix}color' in 0..1, '{prefix}context', '{prefix}max_shift' >= 0 and "
                            f"'{prefix}scale_jitter' in [0, 1), got {self.color}, {self.context}, {self.max_shift}, "
                            f"{self.scale_jitter}")
        if self.objects_per_epoch < 0 or self.val_objects < 2:
            raise UserError(f"config keys '{prefix}objects_per_epoch' >= 0 and '{prefix}val_objects' >= 2, got "
                            f"{self.objects_per_epoch}, {self.val_objects}")
