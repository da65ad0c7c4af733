"""torchvision detection weight files made here, never downloaded: torchvision's own model (weights=None) with
BatchNorm statistics measured on pictures and heads scaled so that scores spread (real detections, not the near-ties
of a random init). Used by the import tests and benchmarks/bench_finetune.py.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torchvision.models import get_model

# classifier scale per architecture: scores spread over 0.05..1 without ties at 1.0
FASTER_RCNNS = {"fasterrcnn_mobilenet_v3_large_320_fpn": 100.0, "fasterrcnn_mobilenet_v3_large_fpn": 100.0,
                "fasterrcnn_resnet50_fpn": 10.0, "fasterrcnn_resnet50_fpn_v2": 20.0}


def pictures(n: int, height: int, width: int, seed: int) -> torch.Tensor:
    """Smooth backgrounds with a few flat coloured boxes, in 0..1."""
    g = torch.Generator().manual_seed(seed)
    out = torch.nn.functional.avg_pool2d(torch.rand(n, 3, height, width, generator=g), 9, 1, 4) * 0.5
    for image in out:
        for _ in range(4):
            y = torch.randint(0, height - 24, (1,), generator=g).item()
            x = torch.randint(0, width - 24, (1,), generator=g).item()
            h, w = torch.randint(12, 40, (2,), generator=g).tolist()
            image[:, y:y + h, x:x + w] = torch.rand(3, 1, 1, generator=g)
    return out


def torchvision_file(name: str, path: Path, num_classes: int = 91) -> Path:
    """torchvision's `name` with real-looking weights saved as a state_dict: BatchNorm statistics measured on
    pictures, then folded (var * c^2, weight * c) so that the eps of each BatchNorm matters; heads scaled."""
    torch.manual_seed(0)
    model = get_model(name, weights=None, weights_backbone=None, num_classes=num_classes, min_size=128,
                      max_size=256)
    norms = [m for m in model.backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        for norm in norms:
            norm.momentum = None
            norm.reset_running_stats()
        model.eval()
        model.backbone.train()
        batch, _ = model.transform(list(pictures(4, 128, 128, 9)))
        model.backbone(batch.tensors)
        for norm in norms:
            norm.running_var.mul_(0.03 ** 2)
            norm.weight.mul_(0.03)
        model.rpn.head.cls_logits.weight.mul_(10)
        model.roi_heads.box_predictor.cls_score.weight.mul_(FASTER_RCNNS.get(name, 50.0))
        model.roi_heads.box_predictor.bbox_pred.weight.mul_(3)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return path
