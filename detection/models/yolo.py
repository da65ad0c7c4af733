"""The `yolo` family. Its anchor head (here, `head: anchor`): YOLOv3-style, 3 anchors per scale on the neck's maps
(PAN by default), objectness, class and CIoU/GIoU box losses, targets assigned across scales by anchor shape. With
`head: free`, YOLOv8's anchor-free head (yolo_free.py). Options: `model.yolo`; contract: base.py."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import complete_box_iou_loss, generalized_box_iou_loss

from datasets.core.errors import UserError
from detection.backbones.base import Backbone
from detection.models.base import DenseOutputs, Detector, DetectorParts, register_family
from detection.models.yolo_free import YOLOFree
from detection.models.yolo_targets import assign_level, batch_boxes

# YOLOv3's anchors (w, h pixels at 416 px input), finest level first.
YOLOV3_ANCHORS = [[10, 13, 16, 30, 33, 23], [30, 61, 62, 45, 59, 119], [116, 90, 156, 198, 373, 326]]


@dataclass
class YOLOOptions:
    """`model.yolo`: anchors per level (flat w, h pairs in input pixels, finest level first) and loss settings."""

    anchors: list[list[float]] = field(default_factory=lambda: [list(map(float, a)) for a in YOLOV3_ANCHORS])
    anchor_threshold: float = 4.0  # a box is a target of anchors within this width/height ratio (its best always)
    box_loss: str = "ciou"  # ciou | giou
    box_weight: float = 0.05
    objectness_weight: float = 1.0
    class_weight: float = 0.5
    level_balance: list[float] = field(default_factory=lambda: [4.0, 1.0, 0.4])  # objectness weight per level
    pre_nms_top_k: int = 1000  # best candidates per image kept before NMS
    # head: anchor (above: YOLOv3's anchors, objectness) | free (yolo_free.py: YOLOv8's decoupled anchor-free head)
    head: str = "anchor"
    reg_max: int = 16  # free: bins per box edge (distribution focal loss); 1: one value per edge, no DFL
    tal_topk: int = 10  # free: positives per box (task-aligned assignment)
    tal_alpha: float = 0.5  # free: alignment = class score^alpha * IoU^beta
    tal_beta: float = 6.0
    cls_loss: str = "bce"  # free: bce | vfl (varifocal), against IoU-aware soft targets
    free_box_weight: float = 7.5  # free: 1 - CIoU weight (YOLOv8's gains)
    free_class_weight: float = 0.5
    dfl_weight: float = 1.5
    end2end: bool = False  # free: also train a one-to-one branch (YOLOv10); inference uses it without NMS
    box_width: int = 0  # free: channels of the box branch's convs (0: YOLOv8's max(16, C / 4, 4 * reg_max))
    class_width: int = 0  # free: channels of the class branch's convs (0: YOLOv8's max(C, min(K, 100)))
    branch_depth: int = 2  # free: 3x3 convs in each branch before its 1x1 output conv (YOLOv8: 2)

    def check(self, prefix: str) -> None:
        if self.head not in ("anchor", "free"):
            raise UserError(f"config key '{prefix}head': {self.head!r} is not one of anchor, free")
        if self.cls_loss not in ("bce", "vfl"):
            raise UserError(f"config key '{prefix}cls_loss': {self.cls_loss!r} is not one of bce, vfl")
        if self.box_width < 0 or self.class_width < 0:
            raise UserError(f"config keys '{prefix}box_width' and '{prefix}class_width' must be 0 (YOLOv8's rule) "
                            f"or more, got {self.box_width} and {self.class_width}")
        if self.reg_max < 1 or self.tal_topk < 1 or self.branch_depth < 1:
            raise UserError(f"config keys '{prefix}reg_max', '{prefix}tal_topk' and '{prefix}branch_depth' must be "
                            f"at least 1, got {self.reg_max}, {self.tal_topk} and {self.branch_depth}")
        if self.end2end and self.head != "free":
            raise UserError(f"config key '{prefix}end2end' needs '{prefix}head: free'")
        for i, level in enumerate(self.anchors):
            if not level or len(level) % 2 or any(v <= 0 for v in level):
                raise UserError(f"config key '{prefix}anchors[{i}]': expected positive w, h pairs, got {level}")
        if self.box_loss not in ("ciou", "giou"):
            raise UserError(f"config key '{prefix}box_loss': {self.box_loss!r} is not one of ciou, giou")
        if self.anchor_threshold <= 1:
            raise UserError(f"config key '{prefix}anchor_threshold' must be above 1, got {self.anchor_threshold}")


class YOLO(Detector):
    """One 1x1 prediction conv per map: for each of its anchors, box (4), objectness (1) and class (K) logits.

    Decoding (YOLOv5's bounded form of YOLOv3's): centre = (2 sigmoid(t_xy) - 0.5 + cell) * stride,
    size = (2 sigmoid(t_wh))^2 * anchor; scores = sigmoid(objectness) * sigmoid(class).
    """

    def __init__(self, body: Backbone, num_classes: int, *, input_size: int, mean: tuple, std: tuple,
                 options: YOLOOptions, postprocess) -> None:
        super().__init__(num_classes, input_size, postprocess)
        shapes = body.output_shape()
        if len(options.anchors) != len(shapes):
            raise UserError(f"model.yolo.anchors: {len(options.anchors)} levels of anchors for the neck's "
                            f"{len(shapes)} maps {list(shapes)}; give one list of w, h pairs per map")
        self.body, self.options = body, options
        self.strides = [spec.stride for spec in shapes.values()]
        self.register_buffer("anchor_wh", anchor_tensor(options.anchors), persistent=False)  # [L, A, 2]
        per_cell = self.anchor_wh.shape[1]
        self.outputs = 5 + num_classes
        self.head = nn.ModuleList(nn.Conv2d(s.channels, per_cell * self.outputs, 1) for s in shapes.values())
        self.set_normalization(mean, std)
        self.init_biases()

    def init_biases(self) -> None:
        """Objectness prior of about 8 objects per 640 px image, class prior 0.6 / K (YOLOv5's)."""
        for conv, stride in zip(self.head, self.strides):
            bias = conv.bias.detach().view(-1, self.outputs)
            bias[:, 4] = math.log(8 / (640 / stride) ** 2)
            bias[:, 5:] = math.log(0.6 / max(self.num_classes - 0.99, 0.01))

    def forward(self, images: torch.Tensor, targets: list[dict] | None = None, proposals=None, *,
                score_threshold: float | None = None, max_detections: int | None = None):
        preds = self.head_outputs(images)
        if self.training:
            return self.loss(preds, targets)
        opts = self.call_options(score_threshold, max_detections)
        return self.detect_dense(self.candidates(preds), opts)

    def head_outputs(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Raw outputs per level, [N, A, H, W, 5 + K]."""
        maps = list(self.body(self.normalize(images)).values())
        return [self.level_output(conv, fmap) for conv, fmap in zip(self.head, maps)]

    def dense_outputs(self, images: torch.Tensor) -> DenseOutputs:
        return self.candidates(self.head_outputs(images))

    def level_output(self, conv: nn.Conv2d, fmap: torch.Tensor) -> torch.Tensor:
        n, _, h, w = fmap.shape
        return conv(fmap).view(n, -1, self.outputs, h, w).permute(0, 1, 3, 4, 2)

    def decode(self, pred: torch.Tensor, level: int, cells: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
        """Boxes xyxy [..., 4] from raw outputs [..., >=4] at grid `cells` [..., 2] (x, y) with `anchors` [..., 2]."""
        xy = (pred[..., :2].sigmoid() * 2 - 0.5 + cells) * self.strides[level]
        wh = (pred[..., 2:4].sigmoid() * 2) ** 2 * anchors
        return torch.cat([xy - wh / 2, xy + wh / 2], dim=-1)

    def loss(self, preds: list[torch.Tensor], targets: list[dict]) -> dict:
        """Box (1 - CIoU or GIoU) and class BCE on assigned anchors; objectness BCE against IoU everywhere."""
        opts, box_terms, cls_terms, obj_terms = self.options, [], [], []
        batch = batch_boxes(targets, self.anchor_wh)
        for level, pred in enumerate(preds):
            found = assign_level(batch, level, self.strides[level], pred.shape[2:4], opts.anchor_threshold)
            objectness = torch.zeros(pred.shape[:4], device=pred.device)
            if found.count:
                chosen = pred[found.image, found.anchor, found.row, found.col]  # [T, 5+K]
                cells = torch.stack([found.col, found.row], dim=1).to(chosen.dtype)
                boxes = self.decode(chosen, level, cells, self.anchor_wh[level][found.anchor])
                lost = box_loss(boxes, found.boxes, opts.box_loss)
                box_terms.append(lost.mean())
                objectness[found.image, found.anchor, found.row, found.col] = (1 - lost.detach()).clamp(0).to(
                    objectness.dtype)
                onehot = F.one_hot(found.labels - 1, self.num_classes).to(chosen.dtype)
                cls_terms.append(F.binary_cross_entropy_with_logits(chosen[:, 5:], onehot))
            balance = opts.level_balance[level] if level < len(opts.level_balance) else 1.0
            obj_terms.append(balance * F.binary_cross_entropy_with_logits(pred[..., 4], objectness))
        zero = preds[0].sum() * 0
        gains = self.loss_gains(preds)
        return {"loss_box": gains["box"] * (sum(box_terms) if box_terms else zero),
                "loss_objectness": gains["objectness"] * sum(obj_terms),
                "loss_classifier": gains["class"] * (sum(cls_terms) if cls_terms else zero)}

    def loss_gains(self, preds: list[torch.Tensor]) -> dict[str, float]:
        """YOLOv5's scaling of the weights: by 3 / levels, objectness by (S / 640)^2, class by K / 80, and the
        sum by the batch size (per-image losses add up, so lr needs no change with the batch)."""
        opts, levels, batch = self.options, len(preds), preds[0].shape[0]
        side = preds[0].shape[2] * self.strides[0]  # the batch's input size (multi-scale batches differ)
        common = 3 / levels * batch
        return {"box": opts.box_weight * common, "objectness": opts.objectness_weight * (side / 640) ** 2 * common,
                "class": opts.class_weight * self.num_classes / 80 * common}

    def candidates(self, preds: list[torch.Tensor]) -> DenseOutputs:
        """Every anchor's box, clipped to the input, and per-class scores, over all levels."""
        boxes, scores = [], []
        for level, pred in enumerate(preds):
            n, a, h, w, _ = pred.shape
            rows, cols = torch.meshgrid(torch.arange(h, device=pred.device), torch.arange(w, device=pred.device),
                                        indexing="ij")
            cells = torch.stack([cols, rows], dim=-1).to(pred.dtype)  # [H, W, 2]
            anchors = self.anchor_wh[level].view(1, a, 1, 1, 2)
            boxes.append(self.decode(pred, level, cells, anchors).reshape(n, -1, 4))
            scores.append((pred[..., 4:5].sigmoid() * pred[..., 5:].sigmoid()).reshape(n, -1, self.num_classes))
        boxes, scores = torch.cat(boxes, 1).clamp(0, self.input_size), torch.cat(scores, 1)
        return DenseOutputs(boxes, scores, self.options.pre_nms_top_k)

def anchor_tensor(anchors: list[list[float]]) -> torch.Tensor:
    """[[w, h, w, h, ...] per level] -> [L, A, 2]; every level must have the same number of anchors."""
    counts = {len(level) // 2 for level in anchors}
    if len(counts) != 1:
        raise UserError(f"model.yolo.anchors: every level needs the same number of w, h pairs, got {anchors}")
    return torch.tensor(anchors, dtype=torch.float32).view(len(anchors), -1, 2)


def box_loss(boxes: torch.Tensor, wanted: torch.Tensor, kind: str) -> torch.Tensor:
    """1 - CIoU (or GIoU) per box pair, both [T, 4] xyxy."""
    loss = complete_box_iou_loss if kind == "ciou" else generalized_box_iou_loss
    return loss(boxes.float(), wanted.float(), reduction="none")


@register_family("yolo", YOLOOptions, default_neck="pan")
def yolo(parts: DetectorParts, options: YOLOOptions) -> Detector:
    """YOLO with `parts.num_classes` classes (sigmoid per class; no background class): the anchor head, or with
    `head: free` the anchor-free one."""
    build = YOLOFree if options.head == "free" else YOLO
    return build(parts.body, parts.num_classes, input_size=parts.input_size, mean=parts.mean, std=parts.std,
                 options=options, postprocess=parts.postprocess)
