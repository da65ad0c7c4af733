"""The anchor-free YOLO head (YOLOv8 style, `model.yolo.head: free`): a decoupled box and class branch per map,
box edges as distributions over `reg_max` bins (DFL), task-aligned assignment (tal.py), and optionally YOLOv10's
one-to-one branch (`end2end`), trained beside the one-to-many one, whose answers need no NMS.

Per anchor point p (cell centre) at stride s: box = (p - s * left, p - s * top, p + s * right, p + s * bottom),
each distance the expectation of its softmax over bins 0..reg_max-1 (reg_max 1: softplus of one value).
"""
from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import complete_box_iou_loss

from detection.backbones.base import Backbone, conv_bn_silu
from detection.models.base import DenseOutputs, Detector
from detection.models.tal import pad_targets, task_aligned_assign


class Branches(nn.Module):
    """For each map: box branch (`depth` 3x3 convs, 1x1 to 4 * reg_max) and class branch (`depth` 3x3 convs, 1x1
    to K); YOLOv8's depth is 2. The branches' widths are YOLOv8's unless given (box_width, class_width > 0)."""

    def __init__(self, channels: list[int], strides: list[int], num_classes: int, reg_max: int,
                 box_width: int = 0, class_width: int = 0, depth: int = 2) -> None:
        super().__init__()
        box_width = box_width or max(16, channels[0] // 4, reg_max * 4)
        class_width = class_width or max(channels[0], min(num_classes, 100))
        self.box = nn.ModuleList(branch(c, box_width, 4 * reg_max, depth) for c in channels)
        self.cls = nn.ModuleList(branch(c, class_width, num_classes, depth) for c in channels)
        for box, cls, stride in zip(self.box, self.cls, strides):
            nn.init.constant_(box[-1].bias, 1.0)
            nn.init.constant_(cls[-1].bias, math.log(5 / num_classes / (640 / stride) ** 2))  # YOLOv8's prior

    def forward(self, maps: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Maps -> box outputs [N, A, 4 * reg_max] and class logits [N, A, K], A = all levels' cells, finest first."""
        box = torch.cat([head(m).flatten(2) for head, m in zip(self.box, maps)], 2).transpose(1, 2)
        cls = torch.cat([head(m).flatten(2) for head, m in zip(self.cls, maps)], 2).transpose(1, 2)
        return box, cls


def branch(channels: int, width: int, outputs: int, depth: int) -> nn.Sequential:
    """`depth` 3x3 conv-BN-SiLU blocks of `width` channels, then a 1x1 conv to `outputs`."""
    blocks = [conv_bn_silu(channels if i == 0 else width, width) for i in range(depth)]
    return nn.Sequential(*blocks, nn.Conv2d(width, outputs, 1))


class YOLOFree(Detector):
    """Anchor-free YOLO; options are the `yolo` family's (`YOLOOptions`)."""

    def __init__(self, body: Backbone, num_classes: int, *, input_size: int, mean: tuple, std: tuple, options,
                 postprocess) -> None:
        super().__init__(num_classes, input_size, postprocess)
        shapes = body.output_shape()
        self.body, self.options, self.reg_max = body, options, options.reg_max
        self.strides = [spec.stride for spec in shapes.values()]
        channels = [spec.channels for spec in shapes.values()]
        self.head = Branches(channels, self.strides, num_classes, self.reg_max, options.box_width, options.class_width,
                             options.branch_depth)
        self.one_to_one = copy.deepcopy(self.head) if options.end2end else None
        self.register_buffer("bins", torch.arange(self.reg_max, dtype=torch.float32), persistent=False)
        self.set_normalization(mean, std)

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        return list(self.body(self.normalize(images)).values())

    def forward(self, images: torch.Tensor, targets: list[dict] | None = None, proposals=None, *,
                score_threshold: float | None = None, max_detections: int | None = None):
        if self.training:
            return self.loss(self.features(images), targets)
        return self.detect_dense(self.dense_outputs(images), self.call_options(score_threshold, max_detections))

    def dense_outputs(self, images: torch.Tensor) -> DenseOutputs:
        maps = self.features(images)
        box, cls = (self.one_to_one or self.head)(maps)
        points, strides = anchor_points(maps, self.strides)
        boxes = self.decode(box, points, strides).clamp(0, self.input_size)
        return DenseOutputs(boxes, cls.sigmoid(), self.options.pre_nms_top_k, nms=self.one_to_one is None)

    def distances(self, box: torch.Tensor) -> torch.Tensor:
        """Raw box outputs [..., 4 * reg_max] -> (left, top, right, bottom) in strides [..., 4]."""
        if self.reg_max == 1:
            return F.softplus(box)
        bins = box.view(*box.shape[:-1], 4, self.reg_max).softmax(-1)
        return bins @ self.bins

    def decode(self, box: torch.Tensor, points: torch.Tensor, strides: torch.Tensor) -> torch.Tensor:
        """Raw box outputs [N, A, 4 * reg_max] at points [A, 2] with strides [A, 1] -> boxes xyxy [N, A, 4]."""
        ltrb = self.distances(box) * strides
        return torch.cat([points - ltrb[..., :2], points + ltrb[..., 2:]], -1)

    def loss(self, maps: list[torch.Tensor], targets: list[dict]) -> dict:
        """One-to-many branch (TAL top-k); with end2end also the one-to-one branch (top-1) on detached maps."""
        points, strides = anchor_points(maps, self.strides)
        padded = pad_targets(targets, maps[0].device)
        losses = self.branch_loss(self.head(maps), points, strides, padded, self.options.tal_topk)
        if self.one_to_one is not None:
            single = self.branch_loss(self.one_to_one([m.detach() for m in maps]), points, strides, padded, 1)
            losses = {name: value + single[name] for name, value in losses.items()}
        return losses

    def branch_loss(self, outputs: tuple[torch.Tensor, torch.Tensor], points: torch.Tensor, strides: torch.Tensor,
                    padded, topk: int) -> dict:
        """Class loss (BCE or varifocal against the soft targets), 1 - CIoU and DFL on positives, each divided by
        the sum of the targets' scores and multiplied by the batch size (as YOLOv8)."""
        box, cls = outputs
        opts = self.options
        boxes = self.decode(box, points, strides)
        got = task_aligned_assign(cls.detach().sigmoid(), boxes.detach(), points, padded, topk, opts.tal_alpha,
                                  opts.tal_beta)
        total = got.scores.sum().clamp(min=1)
        batch = cls.shape[0]
        zero = cls.new_zeros(())
        losses = {"loss_classifier": opts.free_class_weight * batch * class_loss(cls, got.scores, opts.cls_loss) / total,
                  "loss_box": zero, "loss_dfl": zero}
        if got.positive.any():
            weight = got.scores.sum(-1)[got.positive]
            iou_loss = complete_box_iou_loss(boxes[got.positive].float(), got.boxes[got.positive].float(),
                                             reduction="none")
            losses["loss_box"] = opts.free_box_weight * batch * (iou_loss * weight).sum() / total
            if self.reg_max > 1:
                dfl = self.dfl(box[got.positive], got.boxes[got.positive], points.expand(batch, -1, -1)[got.positive],
                               strides.expand(batch, -1, -1)[got.positive])
                losses["loss_dfl"] = opts.dfl_weight * batch * (dfl * weight).sum() / total
        return losses

    def dfl(self, box: torch.Tensor, wanted: torch.Tensor, points: torch.Tensor, strides: torch.Tensor) -> torch.Tensor:
        """Distribution focal loss per positive [T]: cross-entropy of each edge's bins with its target distance,
        split between the two nearest bins."""
        ltrb = torch.cat([points - wanted[:, :2], wanted[:, 2:] - points], -1) / strides
        ltrb = ltrb.clamp(0, self.reg_max - 1.01)
        left = ltrb.long()
        right_weight = ltrb - left
        logits = box.view(-1, self.reg_max)
        left, right_weight = left.view(-1), right_weight.view(-1)
        loss = (F.cross_entropy(logits, left, reduction="none") * (1 - right_weight)
                + F.cross_entropy(logits, left + 1, reduction="none") * right_weight)
        return loss.view(-1, 4).mean(-1)


def class_loss(logits: torch.Tensor, targets: torch.Tensor, kind: str) -> torch.Tensor:
    """Summed class loss against soft targets in 0..1: plain BCE, or varifocal (VarifocalNet: negatives weighted
    by 0.75 p^2, positives by their target)."""
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(logits, targets, reduction="sum")
    p = logits.detach().sigmoid()
    weight = torch.where(targets > 0, targets, 0.75 * p.pow(2))
    return (F.binary_cross_entropy_with_logits(logits, targets, reduction="none") * weight).sum()


def anchor_points(maps: list[torch.Tensor], strides: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Cell centres of every map in pixels [A, 2] (x, y), finest map first, and each one's stride [A, 1]."""
    points, steps = [], []
    for fmap, stride in zip(maps, strides):
        h, w = fmap.shape[-2:]
        ys = (torch.arange(h, device=fmap.device, dtype=torch.float32) + 0.5) * stride
        xs = (torch.arange(w, device=fmap.device, dtype=torch.float32) + 0.5) * stride
        y, x = torch.meshgrid(ys, xs, indexing="ij")
        points.append(torch.stack([x, y], -1).view(-1, 2))
        steps.append(torch.full((h * w, 1), float(stride), device=fmap.device))
    return torch.cat(points), torch.cat(steps)
