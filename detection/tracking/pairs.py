"""SiamFC training pairs: an exemplar crop and a search crop, from COCO (two augmented crops of one object) and from
sequence folders (two frames of one target, at most `sequence_gap` apart), plus negatives and same-class distractors.

Crops are cut as at tracking time (crops.py); the search crop is shifted, scaled, coloured and blurred.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import albumentations as A
import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from datasets.core.errors import UserError
from datasets.core.images import read_rgb
from detection.data.coco import load_coco
from detection.tracking.boxes import xywh_to_xyxy
from detection.tracking.crops import box_in_crop, context_side, crop_square
from detection.tracking.otb import find_sequences
from detection.tracking.siamfc_options import PairOptions, SiamFCOptions

MIN_SIDE = 4.0  # objects narrower or lower than this many pixels are not paired


@dataclass
class Clip:
    """One target in one or more frames: image files, boxes [T, 4] xyxy, COCO category id (-1: unknown)."""

    frames: list[Path]
    boxes: np.ndarray
    category: int

    def usable(self) -> np.ndarray:
        """Indices of the frames whose box is at least MIN_SIDE wide and high."""
        sides = self.boxes[:, 2:] - self.boxes[:, :2]
        return np.flatnonzero((sides >= MIN_SIDE).all(axis=1))


def coco_clips(annotations: str | os.PathLike, images: str | os.PathLike) -> tuple[list[Clip], list[dict]]:
    """One single-frame clip per ordinary (not crowd) object of a COCO split, and the split's categories."""
    coco = load_coco(annotations)
    if not Path(images).is_dir():
        raise UserError(f"images folder not found: {images}")
    clips = [Clip([Path(images) / coco.imgs[a["image_id"]]["file_name"]], xywh_to_xyxy(a["bbox"]), a["category_id"])
             for a in coco.dataset["annotations"] if not a.get("iscrowd", 0)]
    categories = [{"id": c["id"], "name": c["name"]} for c in sorted(coco.dataset["categories"], key=lambda c: c["id"])]
    return clips, categories


def sequence_clips(root: str | os.PathLike) -> list[Clip]:
    """One clip per sequence folder under `root` (OTB ground truth; category unknown)."""
    return [Clip(s.frames, xywh_to_xyxy(s.boxes), -1) for s in find_sequences(root)]


class PairAugment:
    """All of the sampler's randomness: a numpy Generator (choices, shifts, scales) and albumentations' colour and
    blur. `set_random_seed` reseeds it all: the trainer calls it each epoch (and in each loader worker)."""

    def __init__(self, options: PairOptions, seed: int = 0) -> None:
        self.options = options
        self.colour = A.Compose([A.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.05,
                                               p=options.color)])
        self.blur = A.Compose([A.OneOf([A.GaussianBlur(blur_limit=(3, 7)), A.MotionBlur(blur_limit=(3, 9))],
                                       p=options.blur)])
        self.set_random_seed(seed)

    def set_random_seed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.colour.set_random_seed(seed)
        self.blur.set_random_seed(seed + 1)

    def photometric(self, exemplar: np.ndarray, search: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Colour jitter on each crop (apart), blur on the search crop, both grey now and then."""
        exemplar = self.colour(image=exemplar)["image"]
        search = self.blur(image=self.colour(image=search)["image"])["image"]
        if self.rng.random() < self.options.gray:
            exemplar, search = (cv2.cvtColor(cv2.cvtColor(c, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
                                for c in (exemplar, search))
        return exemplar, search


class PairDataset(Dataset):
    """Items: (exemplar [3, Z, Z], search [3, X, X], target), crops float in 0..1, target {"box": [4] xyxy of the
    search crop's object in its pixels, "positive": bool}; a negative's object is another one (all labels 0)."""

    def __init__(self, clips: list[Clip], options: SiamFCOptions, categories: list[dict], seed: int = 0) -> None:
        self.clips, self.options, self.categories = clips, options, categories
        self.transform = PairAugment(options.pairs, seed)
        self.entries = [(c, int(t)) for c, clip in enumerate(clips) for t in clip.usable()]
        if not self.entries:
            raise UserError(f"no object of at least {MIN_SIDE:g}x{MIN_SIDE:g} pixels to make training pairs from")
        self.by_category: dict[int, list[int]] = {}
        for index, clip in enumerate(clips):
            if len(clip.usable()) and clip.category >= 0:
                self.by_category.setdefault(clip.category, []).append(index)
        self.usable = [c for c, clip in enumerate(clips) if len(clip.usable())]

    def __len__(self) -> int:
        return self.options.pairs.pairs_per_epoch or len(self.entries)

    def image(self, clip: int, frame: int) -> np.ndarray:
        return read_rgb(self.clips[clip].frames[frame])

    def search_of(self, clip: int, frame: int) -> tuple[int, int, bool]:
        """(clip, frame) of the search crop's object and whether the pair is positive."""
        rng, opts = self.transform.rng, self.options.pairs
        others = [c for c in self.usable if c != clip]
        if others and rng.random() < opts.negative:
            twins = [c for c in self.by_category.get(self.clips[clip].category, []) if c != clip]
            pool = twins if twins and rng.random() < opts.distractor else others
            other = pool[int(rng.integers(len(pool)))]
            return other, int(rng.choice(self.clips[other].usable())), False
        usable = self.clips[clip].usable()
        near = usable[np.abs(usable - frame) <= opts.sequence_gap]
        return clip, int(rng.choice(near)), True

    def search_crop(self, clip: int, frame: int) -> tuple[np.ndarray, np.ndarray]:
        """The search crop around the object, shifted and stretched; the object's box [4] xyxy in it."""
        rng, opts, size = self.transform.rng, self.options.pairs, self.options.search_size
        box = self.clips[clip].boxes[frame]
        side = context_side(*(box[2:] - box[:2]), opts.context) * size / self.options.exemplar_size
        scale = 1 + rng.uniform(-opts.scale_jitter, opts.scale_jitter)
        stretch = 1 + rng.uniform(-opts.scale_jitter, opts.scale_jitter) / 2
        sides = (side * scale * stretch, side * scale / stretch)
        shift = rng.uniform(-opts.max_shift, opts.max_shift, 2) * np.array(sides) / size  # image pixels
        center = (box[:2] + box[2:]) / 2 - shift
        image = self.image(clip, frame)
        crop = crop_square(image, center, sides, size, image.reshape(-1, 3).mean(axis=0))
        return crop, box_in_crop(box, center, sides, size)

    def __getitem__(self, index: int):
        if self.options.pairs.pairs_per_epoch:
            index = int(self.transform.rng.integers(len(self.entries)))
        clip, frame = self.entries[index % len(self.entries)]
        box, image = self.clips[clip].boxes[frame], self.image(clip, frame)
        side = context_side(*(box[2:] - box[:2]), self.options.pairs.context)
        exemplar = crop_square(image, (box[:2] + box[2:]) / 2, side, self.options.exemplar_size,
                               image.reshape(-1, 3).mean(axis=0))
        search_clip, search_frame, positive = self.search_of(clip, frame)
        search, search_box = self.search_crop(search_clip, search_frame)
        exemplar, search = self.transform.photometric(exemplar, search)
        target = {"box": torch.as_tensor(search_box, dtype=torch.float32), "positive": torch.tensor(positive)}
        return to_tensor(exemplar), to_tensor(search), target


def to_tensor(crop: np.ndarray) -> torch.Tensor:
    """RGB uint8 [S, S, 3] -> float [3, S, S] in 0..1."""
    return torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1).float().div_(255)


def collate_pairs(batch: list) -> tuple[tuple[torch.Tensor, torch.Tensor], list[dict]]:
    """Items -> ((exemplars [N, 3, Z, Z], searches [N, 3, X, X]), N targets)."""
    exemplars, searches, targets = zip(*batch)
    return (torch.stack(exemplars), torch.stack(searches)), list(targets)
