"""The detector contract every family implements, and what `build_detector` hands a family.

The trainer, evaluator, predictor, service and exporter rely on this file alone, never on a family.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import torch
from torch import nn
from torchvision.ops import batched_nms, nms

from detection.backbones.base import Backbone
from detection.config import PostprocessConfig
from detection.registry import DETECTORS


class DenseOutputs(NamedTuple):
    """A single-shot family's candidates for a whole batch, before `dense_detections` reduces each image's."""

    boxes: torch.Tensor  # [N, A, 4] xyxy in the S x S frame, one per anchor
    scores: torch.Tensor  # [N, A, K] per-class scores in 0..1 (no background column)
    top_k: int  # the best (box, class) pairs per image kept before `postprocess`
    nms: bool = True  # False: a one-to-one head, whose best pairs need no NMS (threshold and max detections only)


class Detector(nn.Module):
    """Base class of every detector family: one forward for training and inference.

    forward(images, targets=None, proposals=None, *, score_threshold=None, max_detections=None)
      images:    [N, 3, S, S] float in 0..1, letterboxed to `input_size` S (training with
                 data.multi_scale feeds other multiples of 32); not normalised (the family normalises
                 with its backbone's declared mean and std). A family that `resizes_itself` takes [N, 3, H, W]
                 at the images' own size, and in train mode also a list of N [3, H, W] of different sizes.
      targets:   train mode only, and required there: N dicts {"boxes": [K, 4] float absolute
                 [x1, y1, x2, y2] in the S x S frame (the image's own), "labels": [K] int64 in 1..num_classes};
                 K may be 0.
      proposals: families with `takes_proposals` only: N tensors [P, 4], xyxy in the S x S frame; None: the
                 family proposes from the images itself with its `proposal_input` (whose `cfg`, a
                 ProposalConfig, tells the data path how to make proposals for training).
    train mode -> dict[str, Tensor] of scalar losses; training minimises their sum.
    eval mode  -> N dicts {"boxes": [D, 4] float xyxy in the S x S frame (the image's own), "scores": [D]
                  float in 0..1, "labels": [D] int64 in 1..num_classes}, best score first, after `postprocess`
                  (score threshold, NMS, max detections). Label 0, background, is never emitted.
    score_threshold, max_detections: eval mode, this call's post-processing values, higher or lower than the
                  model's own (`postprocess_options`, model.postprocess), which apply where a call gives None.
                  No part of a family (an RoI head included) cuts at a threshold of its own.
    """

    takes_proposals: bool = False

    def __init__(self, num_classes: int, input_size: int, postprocess: PostprocessConfig) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.input_size = input_size
        self.postprocess_options = postprocess

    @property
    def resizes_itself(self) -> bool:
        """Whether the family resizes each image itself (torchvision's transforms), so that the data path, the
        predictor and evaluation give it images at their own size, without letterbox. False: S x S letterboxed."""
        return False

    def detect_by_size(self, images: list[torch.Tensor], score_threshold: float | None = None,
                       max_detections: int | None = None) -> list[dict]:
        """Eval mode, images [3, H, W] of any sizes (a family that `resizes_itself`): those of one size run as one
        batch; their detections in the order given."""
        groups: dict[tuple[int, ...], list[int]] = {}
        for index, image in enumerate(images):
            groups.setdefault(tuple(image.shape), []).append(index)
        outputs: list[dict] = [{}] * len(images)
        for indices in groups.values():
            batch = torch.stack([images[i] for i in indices])
            found = self(batch, score_threshold=score_threshold, max_detections=max_detections)
            for index, output in zip(indices, found):
                outputs[index] = output
        return outputs

    def set_normalization(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        """The backbone's declared input normalisation, kept as buffers (not saved) for `normalize`."""
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """Images in 0..1 -> what the backbone expects: (images - mean) / std."""
        return (images - self.mean) / self.std

    def call_options(self, score_threshold: float | None = None,
                     max_detections: int | None = None) -> PostprocessConfig:
        """The post-processing of one eval call: the model's own options with the call's values (None: its own)."""
        return self.postprocess_options.with_call(score_threshold, max_detections)

    def postprocess(self, boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor,
                    opts: PostprocessConfig | None = None) -> dict:
        """One image's candidates (boxes [M, 4] xyxy, scores [M], labels [M] in 1..K) -> its detections, with the
        call's options `opts` (`call_options`; None: the model's own)."""
        return postprocess(boxes, scores, labels, opts or self.postprocess_options)

    def dense_outputs(self, images: torch.Tensor) -> DenseOutputs | None:
        """Eval mode, single-shot families: every anchor's candidates as batch tensors, which eval mode turns
        into detections with `detect_dense`. None for families that score per image (the R-CNN lineage). The
        exporter uses it to give these families a graph of any batch size."""
        return None

    def detect_dense(self, dense: DenseOutputs, opts: PostprocessConfig | None = None) -> list[dict]:
        """Per image of a batch's `dense_outputs`: `dense_detections` (threshold, top-k, postprocess) with the
        call's options `opts` (None: the model's own)."""
        opts = opts or self.postprocess_options
        return [self.dense_detections(b, s, dense.top_k, opts, dense.nms) for b, s in zip(dense.boxes, dense.scores)]

    def dense_detections(self, boxes: torch.Tensor, scores: torch.Tensor, top_k: int,
                         opts: PostprocessConfig | None = None, nms: bool = True) -> dict:
        """One image's boxes [A, 4] xyxy with per-class scores [A, K] -> its detections: every (box, class)
        pair at or above the score threshold, the best `top_k` of them, then `postprocess` (without NMS: the
        best max_detections of them)."""
        opts = opts or self.postprocess_options
        flat = scores.flatten()
        keep = torch.nonzero(flat >= opts.score_threshold).squeeze(1)
        keep = keep[flat[keep].topk(min(top_k, keep.numel())).indices]
        box, label = keep // self.num_classes, keep % self.num_classes + 1
        if not nms:  # topk gave them best first
            keep, box, label = keep[: opts.max_detections], box[: opts.max_detections], label[: opts.max_detections]
            return {"boxes": boxes[box], "scores": flat[keep], "labels": label}
        return self.postprocess(boxes[box], flat[keep], label, opts)


def postprocess(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor,
                opts: PostprocessConfig) -> dict[str, torch.Tensor]:
    """Score threshold, NMS (per class, or across classes when class_agnostic), then the best max_detections."""
    keep = scores >= opts.score_threshold
    boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
    if opts.class_agnostic:
        keep = nms(boxes, scores, opts.nms_iou)
    else:
        keep = batched_nms(boxes, scores, labels, opts.nms_iou)
    keep = keep[: opts.max_detections]  # NMS returns indices by descending score
    return {"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep].to(torch.int64)}


@dataclass
class DetectorParts:
    """Everything a family factory receives, built once by `build_detector` from the config."""

    body: Backbone  # backbone plus neck: maps by name, with output_shape() (channels, stride)
    num_classes: int  # object classes; labels run 1..num_classes
    input_size: int  # S: images are [N, 3, S, S]
    mean: tuple[float, ...]  # the backbone's declared input normalisation, for images in 0..1
    std: tuple[float, ...]
    postprocess: PostprocessConfig


@dataclass(frozen=True)
class Family:
    """A registered detector family: its factory, its options dataclass (model.<name>), its default neck; `task`
    names what trains it (detection.tasks)."""

    name: str
    build: Callable[[DetectorParts, Any], Detector]
    options: type
    default_neck: str = "fpn"
    task: str = "detection"

    def __call__(self, parts: DetectorParts, options: Any) -> Detector:
        return self.build(parts, options)


def register_family(name: str, options: type, default_neck: str = "fpn") -> Callable:
    """Decorator for a family factory `(parts, options) -> Detector`; registers it in DETECTORS."""

    def decorator(build: Callable[[DetectorParts, Any], Detector]) -> Callable:
        DETECTORS.register(name)(Family(name, build, options, default_neck))
        return build

    return decorator
