"""Albumentations pipelines that keep boxes consistent: letterbox to the model's square input, train augmentation.

Letterbox = scale the longest side to `size`, pad bottom/right; so original = letterboxed / scale. Models that resize
images themselves (Detector.resizes_itself) get them at their own size: no letterbox, scale 1.
"""
from __future__ import annotations

import albumentations as A
import cv2

from detection.config import AugmentConfig

PAD_VALUE = 114


def letterbox_ops(size: int) -> list:
    return [
        A.LongestMaxSize(max_size=size, interpolation=cv2.INTER_LINEAR),
        A.PadIfNeeded(min_height=size, min_width=size, position="top_left",
                      border_mode=cv2.BORDER_CONSTANT, fill=PAD_VALUE),
    ]


def augment_ops(size: int, aug: AugmentConfig) -> list:
    """Flip, scale/translate (boxes follow), colour; applied after the letterbox."""
    ops = []
    if aug.hflip > 0:
        ops.append(A.HorizontalFlip(p=aug.hflip))
    if aug.scale_min != 1.0 or aug.scale_max != 1.0:
        ops.append(A.Affine(scale=(aug.scale_min, aug.scale_max), translate_percent=(-0.1, 0.1),
                            border_mode=cv2.BORDER_CONSTANT, fill=PAD_VALUE, p=0.5))
    if aug.color > 0:
        ops.append(A.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.05, p=aug.color))
    return ops


def build_transform(size: int, train: bool, aug: AugmentConfig | None = None, seed: int | None = None,
                    letterbox: bool = True) -> A.Compose:
    """Compose(image, bboxes [x1,y1,x2,y2] absolute, labels) -> same, letterboxed to size x size (letterbox False:
    at the image's own size, only augmented)."""
    ops = letterbox_ops(size) if letterbox else [A.NoOp()]  # NoOp: the boxes are still checked and clipped
    if train and aug is not None:
        ops += augment_ops(size, aug)
    bbox_params = A.BboxParams(format="pascal_voc", label_fields=["labels"], min_visibility=0.3,
                               min_width=1, min_height=1, clip=True)
    return A.Compose(ops, bbox_params=bbox_params, seed=seed)


def letterbox_scale(height: int, width: int, size: int) -> float:
    """The factor letterbox_ops applies to an image of height x width."""
    return size / max(height, width)
