"""IoU matching of anchors to ground-truth boxes, shared by the single-shot families.

Every ground-truth box gets at least its best anchor, however small the box (SSD's matching strategy).
"""
from __future__ import annotations

import torch
from torchvision.ops import box_iou

BACKGROUND = -1


def match_anchors(anchors: torch.Tensor, boxes: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """For anchors [A, 4] and boxes [G, 4] (xyxy): index [A] of the matched box, or BACKGROUND (-1).

    An anchor matches the box it overlaps most when that IoU reaches `iou_threshold`; then each box
    claims its own best anchor, so no box is left without one.
    """
    matched = torch.full((anchors.shape[0],), BACKGROUND, dtype=torch.int64, device=anchors.device)
    if boxes.numel() == 0:
        return matched
    iou = box_iou(boxes, anchors)  # [G, A]
    best_iou, best_box = iou.max(dim=0)
    keep = best_iou >= iou_threshold
    matched[keep] = best_box[keep]
    best_anchor = iou.argmax(dim=1)  # [G]
    matched[best_anchor] = torch.arange(boxes.shape[0], device=anchors.device)
    return matched
