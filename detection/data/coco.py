"""COCO detection dataset on pycocotools: checked on load, images read with OpenCV, boxes as xyxy tensors.

Category ids (COCO, from 1) map to contiguous labels 1..K; label 0 is background.
"""
from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import torch
from pycocotools.coco import COCO
from torch.utils.data import Dataset

from datasets.core.coco import load_coco as read_coco_json
from datasets.core.errors import UserError
from detection.data.image_cache import build_image_cache
from detection.data.mosaic import mosaic
from detection.data.proposals import split_off, with_proposals
from detection.data.transforms import letterbox_scale


def _check_fields(data: dict, path: Path) -> None:
    """What training needs beyond datasets.core.coco.load_coco's checks: ids that resolve, 4-number boxes."""
    cat_ids = {c.get("id") for c in data["categories"]}
    image_ids = {im.get("id") for im in data["images"]}
    for im in data["images"]:
        if not {"id", "file_name"} <= im.keys():
            raise UserError(f"{path}: image {im.get('id')!r} lacks 'id' or 'file_name'")
    for ann in data["annotations"]:
        where = f"{path}: annotation {ann.get('id')!r}"
        box = ann.get("bbox")
        if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, (int, float)) for v in box)):
            raise UserError(f"{where}: field 'bbox' must be 4 numbers [x, y, w, h], got {box!r}")
        if ann.get("category_id") not in cat_ids:
            raise UserError(f"{where}: category_id {ann.get('category_id')!r} not in categories")
        if ann.get("image_id") not in image_ids:
            raise UserError(f"{where}: image_id {ann.get('image_id')!r} not in images")


def load_coco(path: str | Path) -> COCO:
    """Load and check a COCO annotations file; UserError naming the file and field on defects."""
    path = Path(path)
    data = read_coco_json(path)
    _check_fields(data, path)
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


class CocoDetection(Dataset):
    """Items: (image [3, S, S] float 0..1, target) with target boxes [K, 4] xyxy in the letterboxed frame,
    labels [K] int64 in 1..K_classes, image_id, orig_size (h, w) and scale (letterbox factor). With a transform
    without letterbox (build_transform(letterbox=False)) the image keeps its own size [3, H, W] and scale is 1.
    Crowd annotations are left out of training targets (COCOeval still reads them from the file).
    `cache_images` ("", ram, disk; see detection.data.image_cache) keeps decoded images, in memory or in
    `cache_dir`; the items are the same with or without it."""

    def __init__(self, annotations: str | Path, images: str | Path, transform, mosaic: float = 0.0,
                 cache_images: str = "", cache_dir: str | Path = ".cache/images") -> None:
        self.mosaic = mosaic  # probability that an item is a mosaic of four images (training only)
        self.proposals: dict[str, np.ndarray] | None = None  # file_name -> [P, 4] xyxy; set for R-CNN, Fast R-CNN
        self.coco = load_coco(annotations)
        self.images_dir = Path(images)
        if not self.images_dir.is_dir():
            raise UserError(f"images folder not found: {self.images_dir}")
        self.ids = sorted(self.coco.imgs)
        self.categories = [{"id": c["id"], "name": c["name"]} for c in
                           sorted(self.coco.dataset["categories"], key=lambda c: c["id"])]
        self.cat_to_label = {c["id"]: i + 1 for i, c in enumerate(self.categories)}
        self.transform = transform
        paths = [self.images_dir / self.coco.imgs[i]["file_name"] for i in self.ids]
        self.images = build_image_cache(cache_images, paths, cache_dir)

    def __len__(self) -> int:
        return len(self.ids)

    def raw_target(self, image_id: int) -> tuple[np.ndarray, np.ndarray]:
        """Boxes [K, 4] xyxy (original pixels) and labels [K] of the non-crowd objects of an image."""
        anns = [a for a in self.coco.imgToAnns.get(image_id, []) if not a.get("iscrowd", 0)]
        boxes = np.array([a["bbox"] for a in anns], dtype=np.float32).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]
        labels = np.array([self.cat_to_label[a["category_id"]] for a in anns], dtype=np.int64)
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        return boxes[keep], labels[keep]

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """RGB image, its boxes [K, 4] xyxy clipped to the image, and labels [K], before any transform;
        with `proposals` set, the image's proposals follow, labelled PROPOSAL."""
        image_id = self.ids[index]
        file_name = self.coco.imgs[image_id]["file_name"]
        image = self.images.read(self.images_dir / file_name)
        height, width = image.shape[:2]
        boxes, labels = self.raw_target(image_id)
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)
        if self.proposals is None:
            return image, boxes, labels
        return image, *with_proposals(boxes, labels, self.proposals.get(file_name), height, width)

    def __getitem__(self, index: int):
        image_id = self.ids[index]
        image, boxes, labels = self.load(index)
        height, width = image.shape[:2]
        if self.mosaic > 0 and np.random.random() < self.mosaic:  # seeded per epoch and worker by the trainer
            others = np.random.randint(len(self), size=3)
            parts = [(image, boxes, labels)] + [self.load(int(i)) for i in others]
            image, boxes, labels = mosaic(parts, max(height, width), np.random)
        out = self.transform(image=image, bboxes=boxes, labels=labels)
        size = max(out["image"].shape[:2])  # S when letterboxed; else the longest side of its input: scale 1
        tensor = torch.from_numpy(np.ascontiguousarray(out["image"].transpose(2, 0, 1))).float().div_(255)
        boxes, labels, proposals = split_off(np.asarray(out["bboxes"], dtype=np.float32).reshape(-1, 4),
                                             np.asarray(out["labels"], dtype=np.int64).reshape(-1))
        target = {
            "boxes": torch.as_tensor(boxes),
            "labels": torch.as_tensor(labels),
            "image_id": image_id,
            "orig_size": (height, width),
            "scale": letterbox_scale(height, width, size),
        }
        if self.proposals is not None:
            target["proposals"] = torch.as_tensor(proposals)
        return tensor, target


def collate(batch: list) -> tuple[torch.Tensor | list[torch.Tensor], list[dict]]:
    """Stack same-size images into [N, 3, S, S] (a list of [3, H, W] when their sizes differ, which only images
    at their own size do); keep targets as a list."""
    images, targets = zip(*batch)
    if len({image.shape for image in images}) > 1:
        return list(images), list(targets)
    return torch.stack(images), list(targets)


def images_to(images: torch.Tensor | list[torch.Tensor], device: torch.device,
              non_blocking: bool = False) -> torch.Tensor | list[torch.Tensor]:
    """A batch of `collate` (a tensor, or a list of images of different sizes) on `device`."""
    if isinstance(images, list):
        return [image.to(device, non_blocking=non_blocking) for image in images]
    return images.to(device, non_blocking=non_blocking)
