"""Every backbone registry entry: builds, forward, backward, declared shapes hold, no NaN; FPN; local weights."""
from __future__ import annotations

import math

import pytest
import torch

from datasets.core.errors import UserError
from detection.backbones import Backbone, ShapeSpec, build_backbone, list_backbones
from detection.necks import build_neck, list_necks
from detection.necks.fpn import FPN
from detection.necks.select import SelectFeatures

# Networks whose convolutions do not pad to "same": map size is input/stride only up to rounding.
IRREGULAR = {"alexnet", "squeezenet1_1", "siamfc_alexnet", "siamfc_tiny"}
# alexnet's c5 is 1x1 at 64 px (and its stride can't be read from that): give it a larger input. The SiamFC
# networks pad nothing, so a map loses the receptive field (87 and 73 px): inputs large enough to read the stride.
INPUT = {"alexnet": (128, 160), "siamfc_alexnet": (287, 320), "siamfc_tiny": (255, 300)}
DEFAULT_INPUT = (64, 96)  # non-square on purpose: checks both axes
# Maps that share a stride: torchvision's detection cut of MobileNetV3-Large reads two stride-32 maps.
SHARED_STRIDES = {"mobilenet_v3_large_det"}


@pytest.fixture(scope="module", params=list_backbones())
def built(request):
    torch.manual_seed(0)
    return request.param, build_backbone(request.param)


def test_every_backbone_forward_backward_and_declared_shapes(built):
    name, backbone = built
    assert isinstance(backbone, Backbone)
    shapes = backbone.output_shape()
    assert shapes and all(isinstance(s, ShapeSpec) for s in shapes.values())
    strides = [s.stride for s in shapes.values()]
    assert strides == sorted(strides) and (len(set(strides)) == len(strides) or name in SHARED_STRIDES), strides
    assert all(s > 1 and s & (s - 1) == 0 for s in strides), strides  # powers of two
    assert len(backbone.mean) == len(backbone.std) == 3, "declares its input normalisation"
    assert all(0 <= m <= 1 for m in backbone.mean) and all(0 < s <= 1 for s in backbone.std)

    height, width = INPUT.get(name, DEFAULT_INPUT)
    backbone.train()
    torch.manual_seed(1)
    images = torch.rand(2, 3, height, width)
    maps = backbone(images)
    assert list(maps) == list(shapes), "map names and order must match output_shape()"
    for key, fmap in maps.items():
        spec = shapes[key]
        assert fmap.shape[:2] == (2, spec.channels), (key, fmap.shape, spec)
        assert torch.isfinite(fmap).all(), key
        for size, axis in ((height, -2), (width, -1)):
            got = fmap.shape[axis]
            if name in IRREGULAR:
                assert 2 ** round(math.log2(size / got)) == spec.stride, (key, size, got, spec)
            else:
                assert got == math.ceil(size / spec.stride), (key, size, got, spec)

    loss = sum(fmap.float().pow(2).mean() for fmap in maps.values())
    backbone.zero_grad(set_to_none=True)
    loss.backward()
    params = [(n, p) for n, p in backbone.named_parameters() if p.requires_grad]
    assert params
    for pname, param in params:
        assert param.grad is not None, f"{pname} got no gradient"
        assert torch.isfinite(param.grad).all(), f"{pname} has a non-finite gradient"
    assert any(p.grad.abs().sum() > 0 for _, p in params)

    backbone.eval()
    with torch.no_grad():
        again = backbone(images)
    assert all(torch.isfinite(m).all() for m in again.values())


def test_trainable_layers_freezes_early_stages():
    backbone = build_backbone("tiny", trainable_layers=1)
    stages = list(backbone.stages.values())
    assert all(not p.requires_grad for stage in stages[:-1] for p in stage.parameters())
    assert all(p.requires_grad for p in stages[-1].parameters())
    maps = backbone(torch.rand(2, 3, 64, 64))
    sum(m.mean() for m in maps.values()).backward()
    assert all(p.grad is None for stage in stages[:-1] for p in stage.parameters())
    assert all(p.grad is not None for p in stages[-1].parameters())


def test_trainable_layers_zero_freezes_everything_torchvision():
    backbone = build_backbone("resnet18", trainable_layers=0)
    assert not any(p.requires_grad for p in backbone.parameters())


@pytest.mark.parametrize("name, features", [("tiny", ["c3", "c4", "c5"]), ("tiny", []), ("resnet18", ["c4", "c5"])])
def test_fpn_output_shape_matches_maps(name, features):
    body = build_neck("fpn", build_backbone(name), features, 32)
    assert isinstance(body, FPN)
    shapes = body.output_shape()
    chosen = features or list(build_backbone(name).output_shape())
    assert list(shapes) == [f"p{c[1:]}" for c in chosen] + ["pool"]
    maps = body(torch.rand(2, 3, 64, 64))
    assert list(maps) == list(shapes)
    for key, fmap in maps.items():
        assert fmap.shape[1] == shapes[key].channels == 32
        assert fmap.shape[-1] == math.ceil(64 / shapes[key].stride), (key, fmap.shape, shapes[key])
        assert torch.isfinite(fmap).all()
    assert shapes["pool"].stride == 2 * shapes[f"p{chosen[-1][1:]}"].stride
    sum(m.mean() for m in maps.values()).backward()
    assert all(p.grad is not None for p in body.fpn.parameters())


def test_select_features_without_fpn():
    backbone = build_backbone("tiny")
    body = build_neck("none", backbone, [], 32)
    assert isinstance(body, SelectFeatures)
    assert body.output_shape() == {"c5": backbone.output_shape()["c5"]}  # default without a neck: the last map
    body = build_neck("none", backbone, ["c3", "c5"], 32)
    maps = body(torch.rand(1, 3, 64, 64))
    assert list(maps) == ["c3", "c5"]
    for key, fmap in maps.items():
        assert fmap.shape[1] == body.output_shape()[key].channels


@pytest.mark.parametrize("neck", ["fpn", "none"])
def test_unknown_feature_is_user_error(neck):
    with pytest.raises(UserError, match="model.features.*c9"):
        build_neck(neck, build_backbone("tiny"), ["c4", "c9"], 32)


def test_unknown_neck_is_user_error_with_suggestion():
    with pytest.raises(UserError, match="model.neck.*did you mean fpn"):
        build_neck("fpm", build_backbone("tiny"), [], 32)


# necks made for other maps or inputs: (maps, height, width). ssd300_vgg reads a stride-8 and a stride-16 map, and
# its last two levels are convolutions without padding whose strides hold at SSD300's 300 px.
NECK_CASES = {"ssd300_vgg": (["c3", "c4"], 300, 300)}


@pytest.mark.parametrize("neck", list_necks())
def test_every_neck_forward_backward_and_declared_shapes(neck):
    """Every NECKS entry over two maps of the tiny backbone: names, channels and strides as declared."""
    torch.manual_seed(0)
    features, height, width = NECK_CASES.get(neck, (["c4", "c5"], 96, 64))
    body = build_neck(neck, build_backbone("tiny"), features, 24)
    assert isinstance(body, Backbone)
    shapes = body.output_shape()
    maps = body(torch.rand(2, 3, height, width))
    assert list(maps) == list(shapes)
    for key, fmap in maps.items():
        assert fmap.shape[:2] == (2, shapes[key].channels), key
        assert fmap.shape[-2:] == (math.ceil(height / shapes[key].stride),
                                   math.ceil(width / shapes[key].stride)), key
        assert torch.isfinite(fmap).all()
    sum(m.float().pow(2).mean() for m in maps.values()).backward()
    stages = ["c2", "c3", "c4", "c5"]
    unread = tuple(f"body.stages.{s}." for s in stages[stages.index(features[-1]) + 1:])  # after the last map read
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for n, p in body.named_parameters()
               if p.requires_grad and not n.startswith(unread))


# ---- pretrained weights from a local file -------------------------------------------------------

def test_pretrained_tiny_loads_exact_weights(tmp_path):
    torch.manual_seed(5)
    source = build_backbone("tiny")
    path = tmp_path / "tiny.pt"
    torch.save({"model": source.state_dict()}, path)  # wrapped form is accepted too
    loaded = build_backbone("tiny", pretrained=str(path))
    for key, value in source.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key


def test_pretrained_torchvision_with_classifier_loads(tmp_path):
    import torchvision

    torch.manual_seed(6)
    net = torchvision.models.resnet18(weights=None)
    path = tmp_path / "resnet18.pth"
    torch.save(net.state_dict(), path)  # includes fc.*, which the backbone drops
    backbone = build_backbone("resnet18", pretrained=str(path))
    assert torch.equal(backbone.stages["c2"][0].weight, net.conv1.weight)
    assert torch.equal(backbone.stages["c5"][1].conv2.weight, net.layer4[1].conv2.weight)


def test_pretrained_missing_file_is_user_error(tmp_path):
    with pytest.raises(UserError, match="not found.*missing.pt"):
        build_backbone("tiny", pretrained=str(tmp_path / "missing.pt"))


def test_pretrained_other_network_is_user_error(tmp_path):
    import torchvision

    path = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    with pytest.raises(UserError, match="resnet18.pth"):
        build_backbone("tiny", pretrained=str(path))


def test_pretrained_fewer_blocks_is_user_error(tmp_path):
    import torchvision

    path = tmp_path / "resnet34.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)  # same names, fewer blocks
    with pytest.raises(UserError, match="resnet34.pth.*missing"):
        build_backbone("resnet34", pretrained=str(path))


def test_pretrained_wrong_shapes_tiny_is_user_error(tmp_path):
    """Same names, other shapes (a tiny backbone of another width): a UserError naming file and shape."""
    from detection.backbones.tiny import tiny

    path = tmp_path / "tiny8.pt"
    torch.save(tiny(width=8).state_dict(), path)
    with pytest.raises(UserError, match="tiny8.pt.*shape"):
        build_backbone("tiny", pretrained=str(path))


def test_pretrained_garbage_file_is_user_error(tmp_path):
    path = tmp_path / "garbage.pt"
    path.write_bytes(b"this is not a torch file")
    with pytest.raises(UserError, match="garbage.pt"):
        build_backbone("tiny", pretrained=str(path))


def test_checkpoint_needs_not_the_starting_weights_file(tmp_path):
    """A model trained from local backbone weights loads from its checkpoint after that file is gone."""
    from detection.config import config_from_dict
    from detection.engine.checkpoint import load_model, save_checkpoint
    from detection.models import build_detector

    weights = tmp_path / "tiny.pt"
    torch.save(build_backbone("tiny").state_dict(), weights)
    cfg = config_from_dict({"data": {"input_size": 64},
                            "model": {"name": "ssd", "backbone": "tiny", "pretrained": str(weights)}})
    model = build_detector(cfg.model, num_classes=2, input_size=64)
    save_checkpoint(tmp_path / "model.pt", {"config": cfg.to_dict(), "model": model.state_dict(),
                                            "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]})
    weights.unlink()
    loaded = load_model(tmp_path / "model.pt").model
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in model.state_dict().items())


# ---- VGG-16's cut -------------------------------------------------------------------------------

def test_vgg16_maps_end_at_the_last_layer_of_their_stride(tmp_path):
    """conv3_3, conv4_3, conv5_3, pool5 (receptive fields 40, 92, 196, 212): SSD300 reads conv4_3 at stride 8.
    vgg16_pooled keeps the cut of older checkpoints (pool2..pool5: c3's receptive field 44)."""
    import torchvision

    from detection.inspect.layers import inspect_model

    expected = {"vgg16": {"c2": (4, 256, 40), "c3": (8, 512, 92), "c4": (16, 512, 196), "c5": (32, 512, 212)},
                "vgg16_pooled": {"c2": (4, 128, 16), "c3": (8, 256, 44), "c4": (16, 512, 100), "c5": (32, 512, 212)}}
    for name, maps in expected.items():
        found = inspect_model(build_backbone(name), (3, 64, 64)).feature_maps
        assert {m.name: (m.stride, m.channels, m.receptive_field) for m in found} == maps, name
    net = torchvision.models.vgg16(weights=None)
    torch.save({f"features.{k}": v for k, v in net.features.state_dict().items()}, tmp_path / "vgg16.pth")
    backbone = build_backbone("vgg16", pretrained=str(tmp_path / "vgg16.pth"), trainable_layers=5)
    conv4_3, conv5_3 = backbone.stages["c3"][-2], backbone.stages["c4"][-2]
    assert torch.equal(conv4_3.weight, net.features[21].weight) and torch.equal(conv5_3.weight, net.features[28].weight)
    assert isinstance(backbone.stages["c3"][0], torch.nn.MaxPool2d)  # pool3 starts the stride-8 stage
    frozen = {name for name, p in backbone.named_parameters() if not p.requires_grad}
    assert frozen == {"stages.c0.0.weight", "stages.c0.0.bias", "stages.c0.2.weight", "stages.c0.2.bias"}  # conv1
