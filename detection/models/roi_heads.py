"""The RoI head the R-CNN lineage shares: torchvision's RoIHeads (IoU sampling, softmax over K+1 classes,
class-specific box regression, multi-task loss) fed by a pooler, plus the poolers: RoI align, RoI pool, SPP.

Faster R-CNN feeds it RPN proposals, Fast R-CNN external ones, R-CNN warped image crops.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision import ops
from torchvision.ops import MultiScaleRoIAlign, boxes as box_ops, roi_pool
from torchvision.ops.poolers import _convert_to_roi_format, _setup_scales


def box_roi_heads(pooler: nn.Module, head: nn.Module, representation_size: int, num_classes: int, *,
                  rois_per_image: int, positive_fraction: float, fg_iou: float, bg_iou: float,
                  top_n: int) -> "BoxRoIHeads":
    """torchvision's RoIHeads with a K+1-way predictor. It samples `rois_per_image` RoIs per image in training
    (`positive_fraction` of them IoU >= fg_iou with a ground-truth box, background below bg_iou) and at
    inference returns every box scoring >= the call's threshold (up to top_n * K): NMS is the shared postprocess."""
    return BoxRoIHeads(pooler, head, FastRCNNPredictor(representation_size, num_classes + 1),
                       fg_iou_thresh=fg_iou, bg_iou_thresh=bg_iou, batch_size_per_image=rois_per_image,
                       positive_fraction=positive_fraction, bbox_reg_weights=None,
                       score_thresh=0.0, nms_thresh=1.0, detections_per_img=top_n * num_classes)


class BoxRoIHeads(RoIHeads):
    """torchvision's RoIHeads; training is its own. At inference the score threshold is an argument of the call
    (the detector's per-call post-processing), not the `score_thresh` fixed when it was built."""

    def forward(self, features: dict[str, torch.Tensor], proposals: list[torch.Tensor],
                image_shapes: list[tuple[int, int]], targets: list[dict] | None = None,
                score_threshold: float | torch.Tensor = 0.0) -> tuple[list[dict], dict]:
        """Training: torchvision's (sampling, losses). Eval: per image {"boxes" [D, 4] xyxy, "scores" [D],
        "labels" [D] in 1..K} of every (proposal, class) pair scoring >= score_threshold, best first."""
        if self.training:
            return super().forward(features, proposals, image_shapes, targets)
        class_logits, box_regression = self.box_predictor(self.box_head(self.box_roi_pool(features, proposals,
                                                                                          image_shapes)))
        return self.scored_boxes(class_logits, box_regression, proposals, image_shapes, score_threshold), {}

    def scored_boxes(self, class_logits: torch.Tensor, box_regression: torch.Tensor, proposals: list[torch.Tensor],
                     image_shapes: list[tuple[int, int]], score_threshold: float | torch.Tensor) -> list[dict]:
        """torchvision's `postprocess_detections` with the threshold given: decode class-specific boxes, clip,
        drop background, scores below the threshold and empty boxes, NMS at `nms_thresh` (1.0: it only sorts; the
        shared postprocess does the real NMS), keep the best `detections_per_img`."""
        boxes_per_image = [boxes.shape[0] for boxes in proposals]  # traced: sizes stay free (len would fix them)
        pred_boxes = self.box_coder.decode(box_regression, proposals).split(boxes_per_image, 0)
        pred_scores = F.softmax(class_logits, -1).split(boxes_per_image, 0)
        results = []
        for boxes, scores, image_shape in zip(pred_boxes, pred_scores, image_shapes):
            boxes = box_ops.clip_boxes_to_image(boxes, image_shape)
            labels = torch.arange(scores.shape[-1], device=scores.device).view(1, -1).expand_as(scores)
            boxes, scores, labels = boxes[:, 1:].reshape(-1, 4), scores[:, 1:].reshape(-1), labels[:, 1:].reshape(-1)
            keep = torch.where(scores >= score_threshold)[0]
            boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
            keep = box_ops.remove_small_boxes(boxes, min_size=1e-2)
            boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
            keep = box_ops.batched_nms(boxes, scores, labels, self.nms_thresh)[: self.detections_per_img]  # by score
            results.append({"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep]})
        return results


def roi_align(maps: list[str], size: int) -> MultiScaleRoIAlign:
    """RoI align over one map, or over several with each RoI on the level that fits its size (FPN)."""
    return LevelRoIAlign(maps, output_size=size, sampling_ratio=2)


class LevelRoIAlign(MultiScaleRoIAlign):
    """torchvision's MultiScaleRoIAlign; when traced, its levels' results are put back in RoI order by one gather
    of whole rows. torchvision's traced path scatters every pooled value (ONNX ScatterElements), which took 43% of
    an exported Faster R-CNN's time at batch 8. Eager mode is torchvision's own code."""

    def forward(self, x: dict[str, torch.Tensor], boxes: list[torch.Tensor],
                image_shapes: list[tuple[int, int]]) -> torch.Tensor:
        if not torch.jit.is_tracing() or len(self.featmap_names) == 1:
            return super().forward(x, boxes, image_shapes)
        maps = [x[name] for name in self.featmap_names]
        if self.scales is None or self.map_levels is None:
            self.scales, self.map_levels = _setup_scales(maps, image_shapes, self.canonical_scale,
                                                         self.canonical_level)
        rois, levels = _convert_to_roi_format(boxes), self.map_levels(boxes)
        order, pooled = [], []
        for level, (fmap, scale) in enumerate(zip(maps, self.scales)):
            index = torch.where(levels == level)[0]
            order.append(index)
            pooled.append(ops.roi_align(fmap, rois[index], self.output_size, spatial_scale=scale,
                                        sampling_ratio=self.sampling_ratio))
        order = torch.cat(order)  # RoI indices in the order of torch.cat(pooled)
        where = torch.zeros_like(order).scatter(0, order, torch.ones_like(order).cumsum(0) - 1)
        return torch.cat(pooled)[where]


class RoIPool(nn.Module):
    """Fast R-CNN's RoI max pooling of one map into size x size bins -> [R, C, size, size]."""

    def __init__(self, name: str, stride: int, size: int) -> None:
        super().__init__()
        self.name, self.scale, self.size = name, 1.0 / stride, size

    def forward(self, features: "OrderedDict[str, torch.Tensor]", boxes: list[torch.Tensor],
                image_shapes: list[tuple[int, int]]) -> torch.Tensor:
        return roi_pool(features[self.name], boxes, self.size, self.scale)


class SpatialPyramidPool(nn.Module):
    """SPP-net's pyramid of RoI max poolings (e.g. 1x1, 2x2, 4x4 bins), flattened and joined -> [R, C * sum(l*l)]."""

    def __init__(self, name: str, stride: int, levels: list[int]) -> None:
        super().__init__()
        self.pools = nn.ModuleList(RoIPool(name, stride, level) for level in levels)

    def forward(self, features: "OrderedDict[str, torch.Tensor]", boxes: list[torch.Tensor],
                image_shapes: list[tuple[int, int]]) -> torch.Tensor:
        return torch.cat([pool(features, boxes, image_shapes).flatten(1) for pool in self.pools], dim=1)
