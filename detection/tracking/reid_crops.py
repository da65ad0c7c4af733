"""Re-identification crops from COCO objects: identity = the annotation; an item is K augmented crops of one object
(positives of each other), every other object of the batch (often of the same class) is a negative.
"""
from __future__ import annotations

import albumentations as A
import numpy as np
import torch
from torch.utils.data import Dataset

from datasets.core.errors import UserError
from datasets.core.images import read_rgb
from detection.tracking.crops import crop_square
from detection.tracking.pairs import Clip, to_tensor
from detection.tracking.reid_options import ReIDOptions


def object_crop(image: np.ndarray, box: np.ndarray, options: ReIDOptions, shift: np.ndarray | None = None,
                scale: float = 1.0) -> np.ndarray:
    """The box plus `context` around it, stretched to a crop_size square (fill: the mean colour); `shift` (x, y
    fractions of the box side) and `scale` move and grow it. image RGB uint8 [H, W, 3], box [4] xyxy."""
    sides = (box[2:] - box[:2]) * (1 + 2 * options.context) * scale
    center = (box[:2] + box[2:]) / 2 + (0 if shift is None else shift * (box[2:] - box[:2]))
    return crop_square(image, center, (max(sides[0], 1.0), max(sides[1], 1.0)), options.crop_size,
                       image.reshape(-1, 3).mean(axis=0))


class CropAugment:
    """All of the sampler's randomness: a numpy Generator (objects, shifts, scales) and albumentations' colour;
    `set_random_seed` reseeds it all (the trainer calls it each epoch and in each loader worker)."""

    def __init__(self, options: ReIDOptions, seed: int = 0) -> None:
        self.options = options
        self.colour = A.Compose([A.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.05,
                                               p=options.color), A.HorizontalFlip(p=0.5)])
        self.set_random_seed(seed)

    def set_random_seed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.colour.set_random_seed(seed)

    def crop(self, image: np.ndarray, box: np.ndarray) -> np.ndarray:
        opts = self.options
        shift = self.rng.uniform(-opts.max_shift, opts.max_shift, 2)
        scale = 1 + self.rng.uniform(-opts.scale_jitter, opts.scale_jitter)
        return self.colour(image=object_crop(image, box, opts, shift, scale))["image"]


class CropDataset(Dataset):
    """Items: (crops [K, 3, S, S] float in 0..1, identity int): K augmented crops of one object (a clip's first
    usable frame); identity is the clip's index. With `objects_per_epoch`, index i is object i mod the count."""

    def __init__(self, clips: list[Clip], options: ReIDOptions, categories: list[dict], seed: int = 0) -> None:
        self.clips, self.options, self.categories = clips, options, categories
        self.entries = [c for c, clip in enumerate(clips) if len(clip.usable())]
        if len(self.entries) < 2:
            raise UserError("fewer than 2 objects of at least 4x4 pixels to learn identities from")
        self.transform = CropAugment(options, seed)

    def __len__(self) -> int:
        return self.options.objects_per_epoch or len(self.entries)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        clip = self.clips[self.entries[index % len(self.entries)]]  # the loader shuffles: objects come evenly
        frame = int(clip.usable()[0])
        image, box = read_rgb(clip.frames[frame]), clip.boxes[frame]
        crops = [to_tensor(self.transform.crop(image, box)) for _ in range(self.options.crops_per_object)]
        return torch.stack(crops), self.entries[index % len(self.entries)]


def collate_crops(batch: list) -> tuple[torch.Tensor, list[dict]]:
    """Items -> (crops [N * K, 3, S, S], N * K targets {"identity": int tensor})."""
    crops, identities = zip(*batch)
    targets = [{"identity": torch.tensor(i)} for i, c in zip(identities, crops) for _ in range(len(c))]
    return torch.cat(crops), targets
