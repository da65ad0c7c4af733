"""The re-identification network: a registry backbone, global average pooling and a small projection to an
L2-normalised embedding; trained with a batch-hard triplet loss where identity = one COCO object (annotation).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from datasets.core.errors import UserError
from detection.backbones import Backbone, build_backbone
from detection.tracking.reid_options import ReIDOptions


def batch_hard_triplet_loss(embeddings: torch.Tensor, identities: torch.Tensor, margin: float) -> torch.Tensor:
    """Batch-hard triplet loss (Hermans et al. 2017): for each anchor, its farthest positive and nearest negative.

    embeddings [N, D] (unit-norm), identities [N] int -> scalar mean of relu(d(a, p) - d(a, n) + margin) over the
    anchors that have both a positive and a negative; zero when none has."""
    distances = torch.cdist(embeddings, embeddings).float()
    same = identities[:, None] == identities[None, :]
    eye = torch.eye(len(identities), dtype=torch.bool, device=embeddings.device)
    positive, negative = same & ~eye, ~same
    valid = positive.any(1) & negative.any(1)
    if not valid.any():
        return embeddings.sum() * 0.0
    hardest_positive = distances.masked_fill(~positive, float("-inf")).amax(1)
    hardest_negative = distances.masked_fill(~negative, float("inf")).amin(1)
    return F.relu(hardest_positive - hardest_negative + margin)[valid].mean()


class ReIDNet(nn.Module):
    """forward(crops, targets=None)
      crops:   [N, 3, S, S] float in 0..1, not normalised (the backbone's declared mean and std are applied).
      targets: train mode only: N dicts {"identity": int tensor}; crops of one object share an identity.
    train mode -> {"loss_triplet": scalar}; eval mode -> embeddings [N, D], unit L2 norm.
    """

    def __init__(self, backbone: Backbone, feature: str, *, dim: int = 64, margin: float = 0.3) -> None:
        super().__init__()
        self.backbone, self.feature, self.margin = backbone, feature, margin
        channels = backbone.output_shape()[feature].channels
        self.project = nn.Sequential(nn.Linear(channels, channels), nn.ReLU(inplace=True), nn.Linear(channels, dim))
        self.register_buffer("mean", torch.tensor(backbone.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(backbone.std).view(1, 3, 1, 1), persistent=False)

    def embed(self, crops: torch.Tensor) -> torch.Tensor:
        """Crops [N, 3, S, S] in 0..1 -> unit-norm embeddings [N, D]."""
        features = self.backbone((crops - self.mean) / self.std)[self.feature]
        return F.normalize(self.project(features.mean(dim=(2, 3))).float(), dim=1)

    def forward(self, crops: torch.Tensor, targets: list[dict] | None = None):
        embeddings = self.embed(crops)
        if not self.training:
            return embeddings
        if targets is None:
            raise ValueError("ReIDNet in train mode needs targets")
        identities = torch.stack([torch.as_tensor(t["identity"]) for t in targets]).to(crops.device)
        return {"loss_triplet": batch_hard_triplet_loss(embeddings, identities, self.margin)}


def build_reid_net(model_cfg, options: ReIDOptions | None = None) -> ReIDNet:
    """model_cfg (a ModelConfig named reid) -> ReIDNet on the backbone's deepest map (or model.features[0])."""
    options = options or model_cfg.options or ReIDOptions()
    if model_cfg.neck not in ("", "none"):
        raise UserError(f"model.neck: the re-id network pools one backbone map, no neck (use none), "
                        f"got {model_cfg.neck!r}")
    backbone = build_backbone(model_cfg.backbone, model_cfg.pretrained, model_cfg.trainable_layers)
    shapes = backbone.output_shape()
    feature = model_cfg.features[0] if model_cfg.features else max(shapes, key=lambda name: shapes[name].stride)
    if feature not in shapes or len(model_cfg.features) > 1:
        raise UserError(f"model.features: the re-id network reads one map of {model_cfg.backbone} "
                        f"({', '.join(shapes)}), got {model_cfg.features}")
    return ReIDNet(backbone, feature, dim=options.dim, margin=options.margin)
