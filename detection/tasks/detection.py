"""Training a detector: COCO splits letterboxed by albumentations (at their own size for a model that resizes images
itself), `build_detector`, COCO evaluation (bbox_mAP).

The detector half of what the trainer did by itself before tasks; its behaviour is unchanged.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from datasets.core.errors import UserError
from detection.config import Config
from detection.data.coco import CocoDetection, collate, images_to
from detection.data.multiscale import batch_size_for, rescale_batch
from detection.data.proposals import split_proposals
from detection.data.transforms import build_transform
from detection.engine.evaluator import given_proposals, predict_loader
from detection.weights.finetune import start_detector

if TYPE_CHECKING:
    import albumentations as A

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
        train = CocoDetection(data.train.annotations, data.train.images, self.transform(True),
                              mosaic=data.augment.mosaic, **cache)
        if len(train) == 0:
            raise UserError(f"{data.train.annotations}: no images to train on")
        if not data.val.annotations:
            return train, None
        val = CocoDetection(data.val.annotations, data.val.images, self.transform(False), **cache)
        if [c["id"] for c in val.categories] != [c["id"] for c in train.categories]:
            raise UserError(f"{data.val.annotations}: categories differ from {data.train.annotations}")
        return train, val

    def transform(self, train: bool, letterbox: bool = True) -> A.Compose:
        """The data path's albumentations pipeline: the training one (augmented, seeded) or the validation one;
        letterbox False keeps each image's own size."""
        data = self.cfg.data
        if not train:
            return build_transform(data.input_size, False, letterbox=letterbox)
        return build_transform(data.input_size, True, data.augment, seed=self.cfg.seed, letterbox=letterbox)

    def build_model(self, train_set: CocoDetection, val_set: CocoDetection | None, device: torch.device,
                    progress: bool) -> torch.nn.Module:
        model, self.pretrained_record = start_detector(self.cfg.model, train_set.categories, self.cfg.data.input_size)
        model = model.to(device)
        if model.resizes_itself:
            self.keep_image_sizes(train_set, val_set)
        if model.takes_proposals:
            self.attach_proposals(model, train_set, val_set, progress)
        return model

    def keep_image_sizes(self, train_set: CocoDetection, val_set: CocoDetection | None) -> None:
        """A model that resizes images itself trains and validates on them at their own size, augmented but not
        letterboxed, as torchvision's references train; multi-scale batches need the letterboxed square."""
        if self.cfg.data.multi_scale:
            raise UserError(f"config key 'data.multi_scale' ({self.cfg.data.multi_scale}) rescales letterboxed "
                            f"square batches, but this {self.cfg.model.name} resizes each image itself "
                            f"(model.faster_rcnn.min_size / max_size or model.ssd.fixed_size above 0) and takes "
                            f"images at their own size; leave data.multi_scale empty")
        train_set.transform = self.transform(True, letterbox=False)
        if val_set is not None:
            val_set.transform = self.transform(False, letterbox=False)

    def attach_proposals(self, model: torch.nn.Module, train_set: CocoDetection, val_set: CocoDetection | None,
                         progress: bool) -> None:
        """Proposals for the train and val images (a file, or computed once into the cache) join the data path."""
        cfg, data = model.proposal_input.cfg, self.cfg.data
        splits = [(train_set, data.train.proposals, cfg.top_n_train)]
        if val_set is not None:
            splits.append((val_set, data.val.proposals, cfg.top_n_test))
        for dataset, file, top_n in splits:
            dataset.proposals = split_proposals(dataset, file, data.proposal_cache, cfg, top_n, progress)

    def to_device(self, images: torch.Tensor | list[torch.Tensor], targets: list[dict], device: torch.device,
                  step: int) -> tuple:
        """(images, targets, proposals) on the device (images: a batch of `collate`); with data.multi_scale, rescaled
        to this step's size.
        Copies are non-blocking: from pinned memory (the loader pins on CUDA) they overlap the step."""
        images = images_to(images, device, non_blocking=True)
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
