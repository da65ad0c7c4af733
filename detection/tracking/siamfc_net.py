"""The SiamFC network: one backbone embeds exemplar and search crops, a grouped convolution cross-correlates them.

Training: a logistic loss against centre labels (cells within `radius` of the target), positives and negatives
weighted half and half. `build_siamfc_net(model_cfg)` is where a config becomes this network.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from datasets.core.errors import UserError
from detection.backbones import Backbone, build_backbone
from detection.tracking.siamfc_options import SiamFCOptions


def cross_correlation(kernels: torch.Tensor, search: torch.Tensor) -> torch.Tensor:
    """Slide each kernel over its own search map: kernels [N, C, h, w] (or [1, C, h, w], shared by all) and
    search [N, C, H, W] -> responses [N, 1, H - h + 1, W - w + 1], one grouped conv2d (groups = N)."""
    n, channels, height, width = search.shape
    kernels = kernels.expand(n, -1, -1, -1) if kernels.shape[0] == 1 else kernels
    out = F.conv2d(search.reshape(1, n * channels, height, width), kernels, groups=n)
    return out.reshape(n, 1, out.shape[-2], out.shape[-1])


def cell_offsets(size: int, stride: int, device: torch.device | None = None) -> torch.Tensor:
    """Search-crop pixels from the crop's centre to each response cell's centre along one axis: [size]."""
    return (torch.arange(size, device=device, dtype=torch.float32) - (size - 1) / 2) * stride


def centre_labels(boxes: torch.Tensor, positive: torch.Tensor, size: int, stride: int, search_size: int,
                  radius: float) -> torch.Tensor:
    """Target assignment: boxes [N, 4] xyxy in search-crop pixels, positive [N] bool -> labels [N, 1, size, size]
    in {0, 1}: 1 where a cell's centre is within `radius` pixels of the box centre of a positive pair."""
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2 - (search_size - 1) / 2  # from the crop's centre
    offsets = cell_offsets(size, stride, boxes.device)
    dx = offsets[None, None, :] - centres[:, 0, None, None]
    dy = offsets[None, :, None] - centres[:, 1, None, None]
    inside = (dx.pow(2) + dy.pow(2)) <= radius ** 2
    return (inside & positive.view(-1, 1, 1)).unsqueeze(1).float()


def logistic_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Balanced logistic loss: positive cells share weight 1/2, negative cells the other 1/2 (all of it when the
    batch has no positive cell). logits, labels [N, 1, R, R] -> scalar."""
    positives = labels.sum()
    negatives = labels.numel() - positives
    pos_weight = 0.5 / positives.clamp(min=1)
    neg_weight = torch.where(positives > 0, 0.5, 1.0) / negatives.clamp(min=1)
    weights = labels * pos_weight + (1 - labels) * neg_weight
    return F.binary_cross_entropy_with_logits(logits, labels, weight=weights, reduction="sum")


class SiamFCNet(nn.Module):
    """forward(exemplars, searches, targets=None)
      exemplars: [N, 3, Z, Z] and searches [N, 3, X, X], float in 0..1, not normalised (this module applies the
                 backbone's declared mean and std).
      targets:   train mode only: N dicts {"box": [4] xyxy of the target in search-crop pixels, "positive": bool}.
    train mode -> {"loss_cls": scalar}; eval mode -> response logits [N, 1, R, R] (R = response_size), the centre
    cell (R - 1) / 2 meaning "the target is at the search crop's centre", one cell = `stride` search pixels.
    """

    def __init__(self, backbone: Backbone, feature: str, *, exemplar_size: int, search_size: int, adjust: int = 0,
                 response_scale: float = 0.001, radius: float = 16.0) -> None:
        super().__init__()
        spec = backbone.output_shape()[feature]
        self.backbone, self.feature, self.stride = backbone, feature, spec.stride
        self.exemplar_size, self.search_size, self.radius = exemplar_size, search_size, radius
        self.adjust = nn.Conv2d(spec.channels, adjust, 1) if adjust else nn.Identity()
        self.response_scale = response_scale
        self.bias = nn.Parameter(torch.zeros(1))
        self.register_buffer("mean", torch.tensor(backbone.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(backbone.std).view(1, 3, 1, 1), persistent=False)
        self.response_size = self._measure_response()

    def _measure_response(self) -> int:
        """R, from a forward of blank crops (in eval mode, so no BatchNorm statistics move)."""
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                z = self.embed(torch.zeros(1, 3, self.exemplar_size, self.exemplar_size))
                x = self.embed(torch.zeros(1, 3, self.search_size, self.search_size))
        except RuntimeError:  # a crop smaller than what the backbone's layers need
            z = x = torch.zeros(0, 0, 0, 0)
        self.train(was_training)
        if min(z.shape[-2:], default=0) < 1 or x.shape[-1] < z.shape[-1]:
            raise UserError(f"model.siamfc: the exemplar ({self.exemplar_size} px) and search ({self.search_size} "
                            f"px) crops are too small for the backbone's maps: no response")
        return x.shape[-1] - z.shape[-1] + 1

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Crops [N, 3, S, S] in 0..1 -> features [N, C, s, s] of the chosen map (after `adjust`)."""
        return self.adjust(self.backbone((images - self.mean) / self.std)[self.feature])

    def respond(self, kernels: torch.Tensor, search: torch.Tensor) -> torch.Tensor:
        """Exemplar features [N or 1, C, h, w] and search features [N, C, H, W] -> response logits [N, 1, R, R]."""
        return cross_correlation(kernels, search) * self.response_scale + self.bias

    def forward(self, exemplars: torch.Tensor, searches: torch.Tensor, targets: list[dict] | None = None):
        logits = self.respond(self.embed(exemplars), self.embed(searches))
        if not self.training:
            return logits
        if targets is None:
            raise ValueError("SiamFCNet in train mode needs targets")
        boxes = torch.stack([t["box"] for t in targets]).to(logits.device, torch.float32)
        positive = torch.stack([torch.as_tensor(t["positive"]) for t in targets]).to(logits.device, torch.bool)
        labels = centre_labels(boxes, positive, logits.shape[-1], self.stride, self.search_size, self.radius)
        return {"loss_cls": logistic_loss(logits.float(), labels)}


def default_feature(backbone: Backbone) -> str:
    """The deepest map of stride at most 8 (SiamFC's total stride), else the finest one."""
    shapes = backbone.output_shape()
    fine = [name for name, spec in shapes.items() if spec.stride <= 8]
    return fine[-1] if fine else min(shapes, key=lambda name: shapes[name].stride)


def build_siamfc_net(model_cfg, options: SiamFCOptions | None = None) -> SiamFCNet:
    """model_cfg (a ModelConfig named siamfc) -> SiamFCNet; UserErrors name the key that does not fit."""
    options = options or model_cfg.options or SiamFCOptions()
    if model_cfg.neck not in ("", "none"):
        raise UserError(f"model.neck: SiamFC reads one backbone map, no neck (use none), got {model_cfg.neck!r}")
    backbone = build_backbone(model_cfg.backbone, model_cfg.pretrained, model_cfg.trainable_layers)
    shapes = backbone.output_shape()
    feature = model_cfg.features[0] if model_cfg.features else default_feature(backbone)
    if feature not in shapes or len(model_cfg.features) > 1:
        raise UserError(f"model.features: SiamFC reads one map of {model_cfg.backbone} ({', '.join(shapes)}), "
                        f"got {model_cfg.features}")
    gap = options.search_size - options.exemplar_size
    if gap % shapes[feature].stride:
        raise UserError(f"model.siamfc: search_size - exemplar_size ({gap}) must be a multiple of the map's "
                        f"stride ({shapes[feature].stride}) so response cells fall on search pixels")
    return SiamFCNet(backbone, feature, exemplar_size=options.exemplar_size, search_size=options.search_size,
                     adjust=options.adjust, response_scale=options.response_scale, radius=options.radius)
