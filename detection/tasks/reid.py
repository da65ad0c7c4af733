"""Training the re-identification embedder: K augmented crops per COCO object, the batch-hard triplet loss, and a
retrieval validation on val crops (top1: an augmented crop's nearest plain crop is its own object; best.pt)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from datasets.core.errors import UserError
from datasets.core.images import read_rgb
from detection.config import Config, family_of
from detection.tracking.pairs import coco_clips, to_tensor
from detection.tracking.reid_crops import CropAugment, CropDataset, collate_crops, object_crop
from detection.tracking.reid_options import ReIDOptions

if TYPE_CHECKING:
    from detection.engine.trainer import Trainer


def retrieval_crops(dataset: CropDataset, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(gallery, queries) [M, 3, S, S]: a plain crop and a seeded augmented crop of up to `val_objects` objects."""
    augment, opts = CropAugment(dataset.options, seed), dataset.options
    gallery, queries = [], []
    for index in dataset.entries[:opts.val_objects]:
        clip = dataset.clips[index]
        frame = int(clip.usable()[0])
        image, box = read_rgb(clip.frames[frame]), clip.boxes[frame]
        gallery.append(to_tensor(object_crop(image, box, opts)))
        queries.append(to_tensor(augment.crop(image, box)))
    return torch.stack(gallery), torch.stack(queries)


@torch.no_grad()
def retrieval_metrics(model: torch.nn.Module, gallery: torch.Tensor, queries: torch.Tensor,
                      device: torch.device) -> dict:
    """top1: share of queries whose nearest gallery embedding is their own object; the mean distance of the true
    pair and of the nearest other object."""
    was_training = model.training
    model.eval()
    g = torch.cat([model(chunk.to(device)) for chunk in gallery.split(64)]).float()
    q = torch.cat([model(chunk.to(device)) for chunk in queries.split(64)]).float()
    model.train(was_training)
    distances = torch.cdist(q, g)
    eye = torch.eye(len(g), dtype=torch.bool, device=distances.device)
    top1 = (distances.argmin(1) == torch.arange(len(g), device=distances.device)).float().mean()
    return {"top1": round(float(top1), 5), "positive_distance": round(float(distances[eye].mean()), 4),
            "nearest_negative_distance": round(float(distances.masked_fill(eye, np.inf).amin(1).mean()), 4)}


class ReIDTask:
    """The re-id embedder (TRACKERS entry with task "reid"); best.pt follows retrieval top1 on val crops."""

    best_metric = "top1"
    report_keys = ("top1", "positive_distance", "nearest_negative_distance")
    collate = staticmethod(collate_crops)

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.options: ReIDOptions = cfg.model.options or ReIDOptions()
        self.val_crops: tuple[torch.Tensor, torch.Tensor] | None = None

    def datasets(self) -> tuple[CropDataset, CropDataset | None]:
        train, val = self.cfg.data.train, self.cfg.data.val
        if not train.annotations:
            raise UserError("config key 'data.train.annotations' is empty: point it at a COCO json")
        clips, categories = coco_clips(train.annotations, train.images)
        crops = CropDataset(clips, self.options, categories, self.cfg.seed)
        if not val.annotations:
            return crops, None
        val_clips, _ = coco_clips(val.annotations, val.images)
        return crops, CropDataset(val_clips, self.options, categories, self.cfg.seed)

    def build_model(self, train_set: CropDataset, val_set: CropDataset | None, device: torch.device,
                    progress: bool) -> torch.nn.Module:
        return family_of(self.cfg.model.name).build_network(self.cfg.model).to(device)

    def to_device(self, crops: torch.Tensor, targets: list[dict], device: torch.device, step: int) -> tuple:
        return crops.to(device, non_blocking=True), [{k: v.to(device, non_blocking=True) for k, v in t.items()}
                                                    for t in targets]

    def losses(self, model: torch.nn.Module, batch: tuple) -> dict[str, torch.Tensor]:
        return model(*batch)

    def evaluate(self, trainer: "Trainer") -> dict:
        """Retrieval on the val split's crops (made once, seeded: the same for every evaluation and resume)."""
        if self.val_crops is None:
            self.val_crops = retrieval_crops(trainer.val_set, self.cfg.seed)
        return retrieval_metrics(trainer.inference_model, *self.val_crops, trainer.device)
