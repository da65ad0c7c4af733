"""The CSP backbone `csp_tiny` (C2f blocks, SPPF): declared maps, its size, its blocks, freezing and weights, and
YOLO and Faster R-CNN detectors built on it training a step and answering in eval mode.

(test_backbones.py runs it with every other registry entry too: forward, backward, shapes, no NaN.)
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from datasets.core.errors import UserError
from detection.backbones import FeatureExtractor, build_backbone, list_backbones
from detection.backbones.csp import C2f, SPPF, csp_tiny
from detection.config import config_from_dict
from detection.models import build_detector

SIZE = 64


def test_registered_and_without_catalog_weights():
    from detection.weights.catalog import backbone_models

    assert "csp_tiny" in list_backbones()
    assert "csp_tiny" not in backbone_models(), "no ImageNet weights are known for it"


@pytest.mark.parametrize("width, depth, size", [(16, 1, (96, 64)), (16, 1, (320, 320)), (8, 2, (70, 45))])
def test_maps_match_output_shape(width, depth, size):
    torch.manual_seed(0)
    backbone = csp_tiny(width=width, depth=depth).eval()
    shapes = backbone.output_shape()
    assert {k: (s.channels, s.stride) for k, s in shapes.items()} == {
        "c2": (2 * width, 4), "c3": (4 * width, 8), "c4": (8 * width, 16), "c5": (16 * width, 32)}
    with torch.no_grad():
        maps = backbone(torch.rand(2, 3, *size))
    assert list(maps) == list(shapes)
    for name, fmap in maps.items():
        spec = shapes[name]
        assert fmap.shape == (2, spec.channels, math.ceil(size[0] / spec.stride), math.ceil(size[1] / spec.stride))
        assert torch.isfinite(fmap).all()


def test_size_at_width_16_is_yolov8n_like():
    """About 1.17 M parameters and 0.66 GFLOPs (2 per multiply-add) for one 320 px image: YOLOv8n's backbone widths
    (32, 64, 128, 256) with one bottleneck per C2f; depth 2 adds bottlenecks, not width."""
    backbone = build_backbone("csp_tiny").eval()
    params = sum(p.numel() for p in backbone.parameters())
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        backbone(torch.rand(1, 3, 320, 320))
    assert 1.1e6 < params < 1.25e6, params
    assert 0.6e9 < counter.get_total_flops() < 0.72e9, counter.get_total_flops()
    deeper = csp_tiny(depth=2)
    assert deeper.output_shape() == backbone.output_shape()
    assert 1.3 * params < sum(p.numel() for p in deeper.parameters()) < 1.45 * params


def test_c2f_keeps_every_bottleneck_output():
    block = C2f(24, 32, n=3)
    assert block.cv2[0].in_channels == (2 + 3) * 16
    out = block(torch.rand(2, 24, 9, 7))
    assert out.shape == (2, 32, 9, 7)


def test_sppf_chained_pools_equal_spp_windows_5_9_13():
    """Three chained 5x5 stride-1 max-pools are SPP's 5, 9 and 13 windows; pooling channels-last changes no value."""
    torch.manual_seed(0)
    sppf = SPPF(16, 8).eval()
    x = torch.randn(2, 16, 11, 6)
    hidden = sppf.cv1(x)
    spp = [hidden] + [F.max_pool2d(hidden, k, 1, k // 2) for k in (5, 9, 13)]
    with torch.no_grad():
        torch.testing.assert_close(sppf(x), sppf.cv2(torch.cat(spp, dim=1)), rtol=0, atol=0)


def test_batchnorm_and_activation_as_yolov8():
    backbone = build_backbone("csp_tiny")
    norms = [m for m in backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and all(m.eps == 1e-3 and m.momentum == 0.03 for m in norms)
    assert any(isinstance(m, torch.nn.SiLU) for m in backbone.modules())
    assert not any(isinstance(m, torch.nn.ReLU) for m in backbone.modules())


@pytest.mark.parametrize("trainable", [0, 1, 3])
def test_trainable_layers_freezes_early_stages(trainable):
    backbone = build_backbone("csp_tiny", trainable_layers=trainable)
    stages = list(backbone.stages.values())
    frozen, free = stages[: len(stages) - trainable], stages[len(stages) - trainable:]
    assert all(not p.requires_grad for stage in frozen for p in stage.parameters())
    assert all(p.requires_grad for stage in free for p in stage.parameters())
    if not free:
        return
    maps = backbone(torch.rand(2, 3, SIZE, SIZE))
    sum(m.mean() for m in maps.values()).backward()
    assert all(p.grad is None for stage in frozen for p in stage.parameters())
    assert all(p.grad is not None for stage in free for p in stage.parameters())


def test_pretrained_loads_exact_weights_and_refuses_another_width(tmp_path):
    torch.manual_seed(3)
    source = build_backbone("csp_tiny")
    path = tmp_path / "csp.pt"
    torch.save({"model": source.state_dict()}, path)
    loaded = build_backbone("csp_tiny", pretrained=str(path))
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in source.state_dict().items())
    narrow = tmp_path / "csp8.pt"
    torch.save(csp_tiny(width=8).state_dict(), narrow)
    with pytest.raises(UserError, match="csp8.pt.*shape"):
        build_backbone("csp_tiny", pretrained=str(narrow))


def detector_config(family: str):
    model = {"name": family, "backbone": "csp_tiny", "neck_channels": 32,
             "postprocess": {"score_threshold": 0.0, "max_detections": 20}}
    if family == "yolo":
        model.update(neck="pan", features=["c3", "c4", "c5"])
    if family == "faster_rcnn":
        model.update(neck="fpn", features=["c3", "c4", "c5"])
        model["faster_rcnn"] = {"anchor_sizes": [8, 16, 32, 64], "rpn_pre_nms_top_n_train": 200,
                                "rpn_post_nms_top_n_train": 100, "rpn_pre_nms_top_n_test": 100,
                                "rpn_post_nms_top_n_test": 50}
    return config_from_dict({"data": {"input_size": SIZE}, "model": model})


def stem_conv(model: torch.nn.Module) -> torch.nn.Conv2d:
    """The first conv of the csp_tiny inside a detector (wherever its family keeps the backbone)."""
    backbone = next(m for m in model.modules() if isinstance(m, FeatureExtractor))
    return backbone.stages["c2"][0][0]


@pytest.mark.parametrize("family", ["yolo", "faster_rcnn"])
def test_detector_on_csp_trains_a_step_and_detects(family):
    torch.manual_seed(0)
    model = build_detector(detector_config(family).model, num_classes=2, input_size=SIZE)
    images = torch.rand(2, 3, SIZE, SIZE) * 0.2
    images[0, :, 8:40, 10:30] = 0.9
    targets = [{"boxes": torch.tensor([[10.0, 8.0, 30.0, 40.0]]), "labels": torch.tensor([1])},
               {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.005, momentum=0.9)
    model.train()
    stem = stem_conv(model)
    before = stem.weight.detach().clone()
    losses = model(images, targets)
    assert losses and all(v.dim() == 0 and torch.isfinite(v) for v in losses.values()), losses
    optimizer.zero_grad()
    sum(losses.values()).backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    optimizer.step()
    assert not torch.equal(before, stem.weight), "the stem learns"
    model.eval()
    with torch.no_grad():
        outputs = model(images)
    assert len(outputs) == 2
    for out in outputs:
        n = len(out["scores"])
        assert out["boxes"].shape == (n, 4) and out["labels"].shape == (n,) and n <= 20
        assert torch.isfinite(out["boxes"]).all() and (out["labels"] >= 1).all()
