"""Task-aligned assignment (TOOD, as YOLOv8 uses it) for anchor-free dense heads, batched and loop-free.

For every ground-truth box the candidates are the anchor points inside it, and always its nearest point, so a box
smaller than the finest stride still gets one. Each candidate's alignment is score^alpha * IoU^beta (the predicted
score of the box's class, the IoU of the predicted box); the best `topk` become positives. A point claimed by
several boxes goes to the one its prediction overlaps most. Targets are soft: the one-hot class scaled by the
alignment, normalised so each box's best positive gets that positive's IoU.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torchvision.ops import box_iou

EPS = 1e-9


@dataclass
class Assignment:
    """Per image and anchor point [N, A]: positive or not, its box index in the padded targets, target boxes
    [N, A, 4] xyxy and soft class targets [N, A, K]."""

    positive: torch.Tensor  # [N, A] bool
    box_index: torch.Tensor  # [N, A] int64 index into the image's padded boxes (0 where not positive)
    boxes: torch.Tensor  # [N, A, 4]
    scores: torch.Tensor  # [N, A, K]


@dataclass
class PaddedTargets:
    """A batch's boxes padded to M per image: boxes [N, M, 4] xyxy, labels [N, M] in 1..K, valid [N, M]."""

    boxes: torch.Tensor
    labels: torch.Tensor
    valid: torch.Tensor


def pad_targets(targets: list[dict], device: torch.device) -> PaddedTargets:
    """The contract's targets (boxes [K_i, 4], labels [K_i] in 1..K) -> PaddedTargets with M = max K_i (at least 1)."""
    most = max([len(t["boxes"]) for t in targets] + [1])
    boxes = torch.zeros(len(targets), most, 4, device=device)
    labels = torch.zeros(len(targets), most, dtype=torch.int64, device=device)
    valid = torch.zeros(len(targets), most, dtype=torch.bool, device=device)
    for i, t in enumerate(targets):
        k = len(t["boxes"])
        boxes[i, :k] = t["boxes"].reshape(-1, 4).float().to(device)
        labels[i, :k] = t["labels"].reshape(-1).to(device)
        valid[i, :k] = True
    return PaddedTargets(boxes, labels, valid)


def candidates(points: torch.Tensor, targets: PaddedTargets) -> torch.Tensor:
    """[N, M, A]: anchor points (points [A, 2] x, y) inside each valid box, plus each valid box's nearest point."""
    x, y = points[:, 0], points[:, 1]
    b = targets.boxes.unsqueeze(-1)  # [N, M, 4, 1]
    inside = (x > b[:, :, 0]) & (y > b[:, :, 1]) & (x < b[:, :, 2]) & (y < b[:, :, 3])
    centre = (targets.boxes[..., :2] + targets.boxes[..., 2:]) / 2  # [N, M, 2]
    nearest = torch.cdist(centre, points.unsqueeze(0).expand(centre.shape[0], -1, -1)).argmin(-1)  # [N, M]
    inside.scatter_(2, nearest.unsqueeze(-1), True)
    return inside & targets.valid.unsqueeze(-1)


def pairwise_iou(boxes: torch.Tensor, predicted: torch.Tensor) -> torch.Tensor:
    """IoU of each image's target boxes [N, M, 4] with its predicted boxes [N, A, 4] -> [N, M, A]."""
    return torch.stack([box_iou(t, p) for t, p in zip(boxes, predicted)]).clamp(min=0)


@torch.no_grad()
def task_aligned_assign(scores: torch.Tensor, predicted: torch.Tensor, points: torch.Tensor,
                        targets: PaddedTargets, topk: int = 10, alpha: float = 0.5,
                        beta: float = 6.0) -> Assignment:
    """scores [N, A, K] in 0..1 and boxes [N, A, 4] xyxy as predicted at points [A, 2] -> the Assignment."""
    n, a, k = scores.shape
    allowed = candidates(points, targets)  # [N, M, A]
    iou = pairwise_iou(targets.boxes, predicted) * allowed
    class_index = (targets.labels - 1).clamp(min=0).unsqueeze(-1).expand(-1, -1, a)  # [N, M, A]
    class_score = scores.transpose(1, 2).gather(1, class_index)  # [N, M, A]
    align = class_score.pow(alpha) * iou.pow(beta) * allowed
    # the best topk candidates of each box; the nearest point is a candidate, so a box never ends up empty
    best = torch.where(allowed, align, -1.0).topk(min(topk, a), dim=-1).indices
    chosen = torch.zeros_like(allowed).scatter_(2, best, True) & allowed
    chosen = rescue_orphans(one_box_per_point(chosen, iou), allowed, align)
    return soft_targets(chosen, align, iou, targets, k)


def one_box_per_point(chosen: torch.Tensor, iou: torch.Tensor) -> torch.Tensor:
    """[N, M, A] positives where a point may belong to several boxes -> each point keeps the box it overlaps most."""
    shared = chosen.sum(1, keepdim=True) > 1  # [N, 1, A]
    if not shared.any():
        return chosen
    best = torch.zeros_like(chosen).scatter_(1, iou.argmax(1, keepdim=True), True)
    return torch.where(shared, best & chosen, chosen)


def rescue_orphans(chosen: torch.Tensor, allowed: torch.Tensor, align: torch.Tensor, rounds: int = 3) -> torch.Tensor:
    """Boxes that lost every positive to overlapping boxes [N, M, A] take back their best-aligned candidate point
    that is not another box's only positive (a few rounds, as two orphans may want the same point)."""
    boxes = torch.arange(chosen.shape[1], device=chosen.device).view(1, -1, 1)
    for _ in range(rounds):
        orphan = allowed.any(-1) & ~chosen.any(-1)  # [N, M]
        if not orphan.any():
            break
        count = chosen.sum(-1)  # [N, M]
        owner = chosen.to(torch.int64).argmax(1)  # [N, A]
        sole = chosen.any(1) & (count.gather(1, owner) == 1)  # [N, A]: the only positive of its box
        free = allowed & ~sole.unsqueeze(1)
        pick = torch.where(free, align, -1.0).argmax(-1)  # [N, M]
        take = orphan & free.gather(2, pick.unsqueeze(-1)).squeeze(-1)
        point = torch.zeros_like(chosen).scatter_(2, pick.unsqueeze(-1), True) & take.unsqueeze(-1)  # [N, M, A]
        first = point.to(torch.int64).argmax(1, keepdim=True)  # one orphan per point this round
        point &= boxes == first
        taken = point.any(1, keepdim=True)
        chosen = (chosen & ~taken) | point
    return chosen


def soft_targets(chosen: torch.Tensor, align: torch.Tensor, iou: torch.Tensor, targets: PaddedTargets,
                 num_classes: int) -> Assignment:
    """Positives [N, M, A] -> per point: its box, and its class target scaled by the normalised alignment."""
    positive = chosen.any(1)  # [N, A]
    box_index = chosen.to(torch.int64).argmax(1)  # [N, A]
    boxes = targets.boxes.gather(1, box_index.unsqueeze(-1).expand(-1, -1, 4))
    labels = targets.labels.gather(1, box_index)
    align = align * chosen
    scale = align / (align.amax(-1, keepdim=True) + EPS) * (iou * chosen).amax(-1, keepdim=True)  # [N, M, A]
    weight = scale.amax(1)  # [N, A]: a point has at most one box
    onehot = torch.nn.functional.one_hot((labels - 1).clamp(min=0), num_classes).to(weight.dtype)
    scores = onehot * (weight * positive).unsqueeze(-1)
    return Assignment(positive, box_index * positive, boxes, scores)
