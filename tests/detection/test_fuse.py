"""Folding BatchNorm into convolutions (detection/utils/fuse.py): the same outputs in eval mode, no BN left."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from detection.backbones import build_backbone
from detection.config import config_from_dict
from detection.models import build_detector
from detection.utils.fuse import fuse_conv_bn, prepare_for_inference


def trained_statistics(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random BN statistics and affine, as after training (fresh ones are mean 0, var 1: fusing would hide a bug)."""
    g = torch.Generator().manual_seed(seed)
    for norm in model.modules():
        if isinstance(norm, nn.BatchNorm2d):
            n = norm.num_features
            norm.running_mean.copy_(torch.randn(n, generator=g) * 0.3)
            norm.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            with torch.no_grad():
                norm.weight.copy_(torch.rand(n, generator=g) + 0.5)
                norm.bias.copy_(torch.randn(n, generator=g) * 0.1)
    return model.eval()


@pytest.mark.parametrize("name", ["tiny", "csp_tiny"])
def test_fused_backbone_gives_the_same_maps(name):
    torch.manual_seed(0)
    backbone = trained_statistics(build_backbone(name))
    fused = fuse_conv_bn(copy.deepcopy(backbone))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
    images = torch.rand(2, 3, 96, 64)
    with torch.no_grad():
        want, got = backbone(images), fused(images)
    for key in want:
        torch.testing.assert_close(got[key], want[key], rtol=1e-4, atol=1e-4)


def test_fused_yolo_on_csp_gives_the_same_raw_outputs():
    """Backbone and PAN neck alike (both conv-BN-SiLU Sequentials)."""
    cfg = config_from_dict({"data": {"input_size": 64}, "model": {
        "name": "yolo", "backbone": "csp_tiny", "neck": "pan", "features": ["c3", "c4", "c5"], "neck_channels": 32}})
    torch.manual_seed(0)
    model = trained_statistics(build_detector(cfg.model, num_classes=3, input_size=64))
    fused = fuse_conv_bn(copy.deepcopy(model))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
    images = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        for got, want in zip(fused.head_outputs(images), model.head_outputs(images)):
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_frozen_batchnorm_is_fused_and_training_mode_refused():
    from torchvision.ops.misc import FrozenBatchNorm2d

    block = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), FrozenBatchNorm2d(4), nn.ReLU())
    block[1].running_mean.fill_(0.2)
    block[1].weight.fill_(2.0)
    with pytest.raises(ValueError, match="eval"):
        fuse_conv_bn(block)
    x = torch.rand(1, 3, 5, 5)
    want = block.eval()(x)
    fuse_conv_bn(block)
    assert isinstance(block[1], nn.Identity)
    torch.testing.assert_close(block(x), want)


@pytest.mark.parametrize("depth", [2, 1])
def test_prepared_free_yolo_gives_the_same_detections(depth):
    """prepare_for_inference (what the Predictor runs): folded and channels-last, the same answers; and the free
    head's branches follow model.yolo.box_width / class_width (channels) and branch_depth (3x3 convs)."""
    cfg = config_from_dict({"data": {"input_size": 96}, "model": {
        "name": "yolo", "backbone": "tiny", "neck": "pan", "features": ["c3", "c4", "c5"], "neck_channels": 48,
        "yolo": {"head": "free", "box_width": 32, "class_width": 24, "branch_depth": depth}}})
    torch.manual_seed(0)
    model = trained_statistics(build_detector(cfg.model, num_classes=3, input_size=96))
    assert [branch[0][0].out_channels for branch in (model.head.box[0], model.head.cls[0])] == [32, 24]
    assert [len(branch) for branch in (model.head.box[2], model.head.cls[2])] == [depth + 1] * 2
    prepared = prepare_for_inference(copy.deepcopy(model))
    assert prepared.head.box[0][0][0].weight.is_contiguous(memory_format=torch.channels_last)
    images = torch.rand(2, 3, 96, 96)
    with torch.no_grad():
        want, got = model(images, score_threshold=0.0), prepared(images, score_threshold=0.0)
    for a, b in zip(want, got):
        assert len(a["boxes"]) == len(b["boxes"]) > 0
        torch.testing.assert_close(b["scores"], a["scores"], rtol=1e-4, atol=1e-4)
