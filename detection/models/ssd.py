"""SSD (Liu et al., 2016) on any registry backbone and neck: multi-scale default boxes, per-location class and box
predictors, hard negative mining 3:1 with smooth L1 plus cross-entropy. Options: `model.ssd`; contract: base.py."""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.detection._utils import _topk_min
from torchvision.models.detection.anchor_utils import DefaultBoxGenerator
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.ssd import SSDHead
from torchvision.models.detection.ssdlite import SSDLiteHead

from datasets.core.errors import UserError
from detection.backbones.base import Backbone
from detection.models.anchors import grid_anchors, ssd_box_sizes
from detection.models.base import DenseOutputs, Detector, DetectorParts, register_family
from detection.models.box_coder import decode, encode
from detection.models.matching import match_anchors


@dataclass
class SSDOptions:
    """`model.ssd`: default-box scales and ratios, matching, mining and the predictor kind."""

    min_scale: float = 0.2  # default-box scale of the finest map, as a fraction of the input
    max_scale: float = 0.95  # of the coarsest map
    aspect_ratios: list[float] = field(default_factory=lambda: [2.0, 3.0])  # each adds r and 1/r boxes
    iou_threshold: float = 0.5  # an anchor is positive at this IoU with a box (each box also gets its best)
    negative_ratio: float = 3.0  # hard negatives per positive
    head: str = "conv"  # conv: 3x3 convs (SSD); lite: depthwise-separable (SSDLite)
    pre_nms_top_k: int = 400  # best candidates per image (per class with top_k_per_class) kept before NMS
    # torchvision's SSD (the defaults keep this project's own SSD; imports set them, see
    # detection/weights/torchvision_import.py)
    scales: list[float] = field(default_factory=list)  # the levels + 1 scales (torchvision's `scales`); empty:
    # min_scale..max_scale, then 1
    level_aspect_ratios: list[list[float]] = field(default_factory=list)  # the ratios of each level; empty:
    # aspect_ratios on every level
    default_boxes: str = "grid"  # grid: centred on each cell at its map's stride, any input size; torchvision:
    # torchvision's DefaultBoxGenerator (its steps, its arithmetic, sides clipped to the input), needs fixed_size
    steps: list[int] = field(default_factory=list)  # torchvision default boxes: input pixels between centres, per
    # level (SSD300: 8 .. 300); empty: the centres spread evenly over the input
    fixed_size: int = 0  # > 0: every image is stretched to fixed_size x fixed_size (aspect not kept) and the boxes
    # mapped back to the image given (torchvision's SSD transform); 0: run at the size given
    image_mean: list[float] = field(default_factory=list)  # input normalisation for images in 0..1; empty: the
    image_std: list[float] = field(default_factory=list)  # backbone's (torchvision's SSD300: 0..255 input)
    top_k_per_class: bool = False  # pre_nms_top_k candidates per class (torchvision's topk_candidates)
    box_loss_beta: float = 1 / 9  # smooth L1's beta (torchvision's SSD: 1.0)

    def check(self, prefix: str) -> None:
        if not 0 < self.min_scale < self.max_scale <= 1:
            raise UserError(f"{prefix}min_scale and max_scale: need 0 < min_scale < max_scale <= 1, "
                            f"got {self.min_scale}, {self.max_scale}")
        if self.head not in ("conv", "lite"):
            raise UserError(f"config key '{prefix}head': {self.head!r} is not one of conv, lite")
        ratios = [r for level in self.level_aspect_ratios for r in level] + list(self.aspect_ratios)
        if any(r <= 0 for r in ratios):
            raise UserError(f"config key '{prefix}aspect_ratios' and 'level_aspect_ratios' must be positive, got "
                            f"{self.aspect_ratios} and {self.level_aspect_ratios}")
        if self.default_boxes not in ("grid", "torchvision"):
            raise UserError(f"config key '{prefix}default_boxes': {self.default_boxes!r} is not one of grid, "
                            f"torchvision")
        if self.fixed_size < 0 or (self.default_boxes == "torchvision" and not self.fixed_size):
            raise UserError(f"config key '{prefix}fixed_size' must be 0 or more, and more with "
                            f"default_boxes=torchvision (its boxes are made for one input size), got {self.fixed_size}")
        if self.steps and self.default_boxes != "torchvision":
            raise UserError(f"config key '{prefix}steps' is read with default_boxes=torchvision only (grid: the "
                            f"maps' strides)")
        if len(self.image_mean) not in (0, 3) or len(self.image_std) != len(self.image_mean) or any(
                v <= 0 for v in self.image_std):
            raise UserError(f"config keys '{prefix}image_mean' and '{prefix}image_std': three values each (std > 0) "
                            f"or neither, got {self.image_mean} and {self.image_std}")
        if self.box_loss_beta < 0:
            raise UserError(f"config key '{prefix}box_loss_beta' must be 0 or more, got {self.box_loss_beta}")

    def level_ratios(self, levels: int) -> list[list[float]]:
        """The aspect ratios of each of `levels` maps; UserError when level_aspect_ratios has another count."""
        if not self.level_aspect_ratios:
            return [list(self.aspect_ratios)] * levels
        if len(self.level_aspect_ratios) != levels:
            raise UserError(f"model.ssd.level_aspect_ratios: {len(self.level_aspect_ratios)} lists for {levels} "
                            f"feature maps; give one per map")
        return [list(r) for r in self.level_aspect_ratios]

    def box_sizes(self, levels: int, input_size: int) -> list[list[tuple[float, float]]]:
        """(w, h) in pixels of each level's default boxes at `input_size` (fixed_size when set)."""
        for key, values, count in (("scales", self.scales, levels + 1), ("steps", self.steps, levels)):
            if values and len(values) != count:
                raise UserError(f"model.ssd.{key}: {len(values)} values for {levels} feature maps; give {count}")
        return ssd_box_sizes(levels, self.fixed_size or input_size, self.min_scale, self.max_scale,
                             self.level_ratios(levels), list(self.scales) or None,
                             clip=self.default_boxes == "torchvision")


class SSD(Detector):
    """Single-shot detector over every map of `body`; default boxes from `options`, softmax over K + 1 classes.

    With options.fixed_size F (torchvision's SSD) the images [N, 3, H, W] may have any size (in training also a list
    of [3, H, W] of different sizes): normalised, stretched to F x F, detected there (NMS included), and the boxes
    scaled back to the H x W frame.
    """

    def __init__(self, body: Backbone, num_classes: int, *, input_size: int, mean: tuple, std: tuple,
                 options: SSDOptions, postprocess) -> None:
        super().__init__(num_classes, input_size, postprocess)
        self.body, self.options = body, options
        shapes = body.output_shape()
        self.strides = [spec.stride for spec in shapes.values()]
        self.frame = options.fixed_size or input_size  # the side of the frame the head sees
        self.box_sizes = options.box_sizes(len(shapes), input_size)
        self.default_box_generator = None
        if options.default_boxes == "torchvision":
            self.default_box_generator = DefaultBoxGenerator(
                options.level_ratios(len(shapes)), options.min_scale, options.max_scale,
                scales=list(options.scales) or None, steps=list(options.steps) or None, clip=True)
        channels, per_cell = [s.channels for s in shapes.values()], [len(s) for s in self.box_sizes]
        if options.head == "lite":
            norm = functools.partial(nn.BatchNorm2d, eps=1e-3, momentum=0.03)
            self.head = SSDLiteHead(channels, per_cell, num_classes + 1, norm)
        else:
            self.head = SSDHead(channels, per_cell, num_classes + 1)
        self.set_normalization(tuple(options.image_mean) or mean, tuple(options.image_std) or std)

    @property
    def resizes_itself(self) -> bool:
        """With fixed_size: torchvision's stretch, so images come at their own size."""
        return self.options.fixed_size > 0

    def forward(self, images: torch.Tensor, targets: list[dict] | None = None, proposals=None, *,
                score_threshold: float | None = None, max_detections: int | None = None):
        if self.training:
            if self.options.fixed_size:
                targets = stretched_targets(targets, [image.shape[-2:] for image in images], self.frame)
            return self.loss(*self.head_outputs(images), targets)
        opts = self.call_options(score_threshold, max_detections)
        return self.detect_dense(self.dense_outputs(images), opts)

    def head_outputs(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Box deltas [N, A, 4], class logits [N, A, K + 1] and the default boxes [A, 4] they refer to (in the
        fixed_size frame when set)."""
        batch = self.framed(images)
        maps = list(self.body(batch).values())
        out = self.head(maps)
        if self.default_box_generator is not None:
            frame = ImageList(batch, [(self.frame, self.frame)])
            anchors = self.default_box_generator(frame, maps)[0]
        else:
            anchors = torch.cat(grid_anchors(self.box_sizes, self.strides, [m.shape[-2:] for m in maps]))
        return out["bbox_regression"], out["cls_logits"], anchors.to(batch.device)

    def framed(self, images: torch.Tensor | list[torch.Tensor]) -> torch.Tensor:
        """Images normalised, and with fixed_size stretched to F x F (torchvision's order: normalise, then resize;
        a list of images of different sizes one by one) -> the batch the body sees."""
        if isinstance(images, list):
            return torch.cat([self.framed(image[None]) for image in images])
        batch = self.normalize(images)
        if self.options.fixed_size:
            batch = F.interpolate(batch, size=(self.frame, self.frame), mode="bilinear", align_corners=False)
        return batch

    def dense_outputs(self, images: torch.Tensor) -> DenseOutputs:
        """Decoded boxes clipped to the frame (then scaled back to the images' with fixed_size) and class scores (no
        background) of every default box; with top_k_per_class, scores outside their class's best pre_nms_top_k
        are 0."""
        deltas, logits, anchors = self.head_outputs(images)
        boxes = decode(deltas, anchors).clamp(0, self.frame)
        if self.options.fixed_size:
            boxes = boxes * back_to_input(images, self.frame)
        scores = F.softmax(logits, dim=-1)[..., 1:]  # [N, A, K]
        top_k = self.options.pre_nms_top_k
        if self.options.top_k_per_class:
            scores, top_k = best_per_class(scores, top_k), top_k * scores.shape[-1]
        return DenseOutputs(boxes, scores, top_k)

    def loss(self, deltas: torch.Tensor, logits: torch.Tensor, anchors: torch.Tensor, targets: list[dict]) -> dict:
        """Smooth L1 on positives' encoded boxes; cross-entropy on positives and the hardest negatives."""
        box_losses, cls_losses, positives = [], [], 0
        for delta, logit, target in zip(deltas, logits, targets):
            matched = match_anchors(anchors, target["boxes"], self.options.iou_threshold)
            pos = matched >= 0
            labels = torch.zeros_like(matched)
            labels[pos] = target["labels"][matched[pos]]
            wanted = encode(target["boxes"][matched[pos]], anchors[pos])
            box_losses.append(F.smooth_l1_loss(delta[pos], wanted, reduction="sum", beta=self.options.box_loss_beta))
            ce = F.cross_entropy(logit, labels, reduction="none")
            cls_losses.append(ce[pos].sum() + hardest_negatives(ce, pos, self.options.negative_ratio).sum())
            positives += int(pos.sum())
        scale = max(1, positives)
        return {"loss_box_reg": sum(box_losses) / scale, "loss_classifier": sum(cls_losses) / scale}


def stretched_targets(targets: list[dict], sizes: list[torch.Size], frame: int) -> list[dict]:
    """Targets of images of `sizes` (H, W each) -> of those images stretched to frame x frame."""
    return [stretched_target(t, size, frame) for t, size in zip(targets, sizes)]


def stretched_target(target: dict, size: torch.Size, frame: int) -> dict:
    """One image's target, its image of `size` (H, W) stretched to frame x frame."""
    height, width = int(size[0]), int(size[1])
    if (height, width) == (frame, frame):
        return target
    scale = torch.tensor([frame / width, frame / height, frame / width, frame / height])
    return {**target, "boxes": target["boxes"] * scale.to(target["boxes"])}


def back_to_input(images: torch.Tensor, frame: int) -> torch.Tensor:
    """[4] (w, h, w, h) / frame: from the frame x frame frame to the images' (torchvision's resize_boxes ratios).
    The sides are summed from ones, so a traced graph keeps the image size free."""
    height = images.new_ones(images.shape[-2]).sum()
    width = images.new_ones(images.shape[-1]).sum()
    side = torch.tensor(float(frame), device=images.device)
    return torch.stack([width / side, height / side, width / side, height / side])


def best_per_class(scores: torch.Tensor, top_k: int) -> torch.Tensor:
    """scores [N, A, K] with all but each class's best `top_k` default boxes set to 0 (torchvision's SSD keeps its
    topk_candidates per class; a score threshold applied afterwards keeps the same pairs)."""
    best = scores.topk(_topk_min(scores, top_k, 1), dim=1)  # [N, k, K]
    return torch.zeros_like(scores).scatter(1, best.indices, best.values)


def hardest_negatives(ce: torch.Tensor, pos: torch.Tensor, ratio: float) -> torch.Tensor:
    """The `ratio` x positives highest losses among negatives (at least `ratio` when an image has no object)."""
    count = int(ratio * max(1, int(pos.sum())))
    negative = ce.detach().masked_fill(pos, -1.0)
    count = min(count, int((~pos).sum()))
    return ce[negative.topk(count).indices]


@register_family("ssd", SSDOptions, default_neck="ssd_extra")
def ssd(parts: DetectorParts, options: SSDOptions) -> SSD:
    """SSD with `parts.num_classes` object classes (softmax index 0 is background)."""
    return SSD(parts.body, parts.num_classes, input_size=parts.input_size, mean=parts.mean, std=parts.std,
               options=options, postprocess=parts.postprocess)
