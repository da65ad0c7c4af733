"""Training a detector: COCO splits letterboxed by albumentations, `build_detector`, COCO evaluation (bbox_mAP).

The detector half of what the trainer did by itself before tasks; its behaviour is unchanged.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from datasets.core.errors import UserError
from detection.config import Config
from detection.data.coco import CocoDetection, collate
from detection.data.multiscale import batch_size_for, rescale_batch
from detection.data.proposals import split_proposals
from detection.data.transforms import build_transform
from detection.engine.evaluator import given_proposals, predict_loader
from detection.weights.finetune import start_detector

if TYPE_CHECKING:
    from detection.engine.trainer import Trainer


class DetectionTask:
    """A detector family (DETECTORS) on COCO data; best.pt follows bbox_mAP."""

    best_metric = "bbox_mAP"
    report_keys = ("bbox_mAP", "bbox_mAP_50")
    collate = staticmethod(collate)

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.pretrained_record: dict | None = None  # what model.pretrained=CKPT.pt loaded, for metrics.jsonl

    def datasets(self) -> tuple[CocoDetection, CocoDetection | None]:
        data = self.cfg.data
        if not data.train.annotations:
            raise UserError("config key 'data.train.annotations' is empty: point it at a COCO json")
        cache = {"cache_images": data.cache_images, "cache_dir": data.image_cache_dir}
        train = CocoDetection(data.train.annotations, data.train.images,
                              build_transform(data.input_size, True, data.augment, seed=self.cfg.seed),
                              mosaic=data.augment.mosaic, **cache)
        if len(train) == 0:
            raise UserError(f"{data.train.annotations}: no images to train on")
        if not data.val.annotations:
            return train, None
        val = CocoDetection(data.val.annotations, data.val.images, build_transform(data.input_size, False), **cache)
        if [c["id"] for c in val.categories] != [c["id"] for c in train.categories]:
            raise UserError(f"{data.val.annotations}: categories differ from {data.train.annotations}")
        return train, val

    def build_model(self, train_set: CocoDetection, val_set: CocoDetection | None, device: torch.device,
                    progress: bool) -> torch.nn.Module:
        model, self.pretrained_record = start_detector(self.cfg.model, train_set.categories, self.cfg.data.input_size)
        model = model.to(device)
        if model.takes_proposals:
            self.attach_proposals(model, train_set, val_set, progress)
        return model

    def attach_proposals(self, model: torch.nn.Module, train_set: CocoDetection, val_set: CocoDetection | None,
                         progress: bool) -> None:
        """Proposals for the train and val images (a file, or computed once into the cache) join the data path."""
        cfg, data = model.proposal_input.cfg, self.cfg.data
        splits = [(train_set, data.train.proposals, cfg.top_n_train)]
        if val_set is not None:
            splits.append((val_set, data.val.proposals, cfg.top_n_test))
        for dataset, file, top_n in splits:
            dataset.proposals = split_proposals(dataset, file, data.proposal_cache, cfg, top_n, progress)

    def to_device(self, images: torch.Tensor, targets: list[dict], device: torch.device, step: int) -> tuple:
        """(images, targets, proposals) on the device; with data.multi_scale, rescaled to this step's size.
        Copies are non-blocking: from pinned memory (the loader pins on CUDA) they overlap the step."""
        images = images.to(device, non_blocking=True)
        targets = [{k: t[k].to(device, non_blocking=True) for k in ("boxes", "labels", "proposals") if k in t}
                   for t in targets]
        if self.cfg.data.multi_scale:
            low, high = self.cfg.data.multi_scale
            size = batch_size_for(step, self.cfg.seed, self.cfg.data.input_size, low, high)
            images, targets = rescale_batch(images, targets, size)
        proposals = given_proposals(targets, device)
        targets = [{"boxes": t["boxes"], "labels": t["labels"]} for t in targets]
        return images, targets, proposals

    def losses(self, model: torch.nn.Module, batch: tuple) -> dict[str, torch.Tensor]:
        images, targets, proposals = batch
        return model(images, targets, proposals)

    def evaluate(self, trainer: "Trainer") -> dict:
        """The 12 COCO numbers on the val set, plus "per_class" (AP, AP50, AP75 of each category); the
        run report draws the evaluation's pictures."""
        loader = trainer.loader(trainer.val_set, False, self.cfg.seed)
        results = predict_loader(trainer.inference_model, loader, trainer.val_set.categories, trainer.device,
                                 progress=trainer.progress)
        found = trainer.run_report.evaluation(trainer.val_set.coco, trainer.val_set.images_dir, results)
        return {k: v for k, v in found.record().items() if k != "confusion_matrix"}
