"""detection.inspect: receptive fields, output sizes, parameters and multiply-adds against hand-computed values;
every backbone and detector family inspects; data coverage; the CLI's JSON and its user errors."""
from __future__ import annotations

import json

import pytest
import torchvision
from torch import nn

from datasets.core.coco import save_coco
from detection.backbones import Backbone, build_backbone, list_backbones
from detection.cli.inspect import main
from detection.config import config_from_dict
from detection.engine.checkpoint import save_checkpoint
from detection.inspect.coverage import coverage
from detection.inspect.geometry import Geometry, resized
from detection.inspect.layers import inspect_model
from detection.inspect.report import FeatureMap
from detection.models import build_detector, list_detectors

LAYER_KEYS = {"name", "type", "output_shape", "params", "macs", "kernel", "stride", "padding", "dilation",
              "receptive_field", "jump", "start"}


def conv3(channels: int = 4) -> nn.Conv2d:
    return nn.Conv2d(channels, channels, 3, padding=1)


@pytest.mark.parametrize("convs, seen", [(1, 3), (2, 5), (3, 7)])
def test_stacked_3x3_convs_see_2n_plus_1(convs, seen):
    report = inspect_model(nn.Sequential(*(conv3(3) for _ in range(convs))), (3, 16, 16))
    last = report.layers[-1]
    assert (last.receptive_field, last.jump, last.start) == (seen, 1, 0.5)
    assert report.merges == 0 and not last.largest_path


def test_7x7_stride_2_then_3x3_max_pool_stride_2_has_jump_4():
    stem = nn.Sequential(nn.Conv2d(3, 8, 7, stride=2, padding=3), nn.MaxPool2d(3, stride=2, padding=1))
    conv, pool = inspect_model(stem, (3, 64, 64)).layers
    assert (conv.receptive_field, conv.jump, conv.kernel, conv.stride, conv.padding) == (7, 2, 7, 2, 3)
    assert (pool.receptive_field, pool.jump) == (7 + 2 * 2, 4)
    assert pool.output_shape == [1, 8, 16, 16]


def test_start_follows_padding_and_dilation():
    """start_out = start_in + ((k - 1) / 2 * d - p) * j_in: an unpadded 3x3 conv moves the first centre by 1."""
    layers = inspect_model(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 3, stride=2),
                                         nn.Conv2d(4, 4, 3, dilation=2)), (3, 32, 32)).layers
    assert [row.start for row in layers] == [1.5, 2.5, 2.5 + 2 * 2]
    assert [row.receptive_field for row in layers] == [3, 5, 5 + 2 * 2 * 2]
    assert layers[2].dilation == 2


def test_alexnet_first_layer_output_size_and_parameters():
    """(W - F + 2P) / S + 1 = (227 - 11) / 4 + 1 = 55; 11 * 11 * 3 * 96 weights + 96 biases = 34,944."""
    (row,) = inspect_model(nn.Conv2d(3, 96, 11, stride=4, padding=0), (3, 227, 227)).layers
    assert row.output_shape == [1, 96, (227 - 11 + 2 * 0) // 4 + 1, 55]
    assert row.params == 34_944
    assert (row.kernel, row.stride, row.padding, row.receptive_field, row.jump) == (11, 4, 0, 11, 4)


def test_vgg16_features_parameters_and_conv5_3_receptive_field():
    features = torchvision.models.vgg16(weights=None).features
    report = inspect_model(features, (3, 224, 224))
    assert report.total_params == 14_714_688 == sum(row.params for row in report.layers)
    conv5_3 = next(row for row in report.layers if row.name == "28")
    assert conv5_3.type == "Conv2d" and conv5_3.output_shape == [1, 512, 14, 14]
    assert (conv5_3.receptive_field, conv5_3.jump) == (196, 16)
    assert report.layers[-1].receptive_field == 212  # pool5
    assert report.merges == 0


@pytest.mark.parametrize("cin, cout, kernel, stride, groups", [(8, 16, 3, 1, 1), (8, 16, 5, 2, 2), (8, 8, 3, 1, 8),
                                                               (6, 12, 1, 1, 3)])
def test_conv_multiply_adds_are_k2_cin_cout_hw_per_group(cin, cout, kernel, stride, groups):
    conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, groups=groups)
    (row,) = inspect_model(conv, (cin, 20, 20)).layers
    _, _, height, width = row.output_shape
    assert row.macs == kernel * kernel * (cin // groups) * cout * height * width


def test_residual_block_reports_the_largest_path():
    block = torchvision.models.resnet.BasicBlock(8, 8)
    report = inspect_model(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), block), (3, 16, 16))
    last = report.layers[-1]  # the ReLU after the add: conv(3) then two 3x3 convs on the main path
    assert report.merges == 1 and last.largest_path and last.receptive_field == 7
    assert not report.layers[0].largest_path


def test_resize_divides_the_jump_and_keeps_the_receptive_field():
    coarse = Geometry(size=100, jump=32, start=16.5)
    up = resized(coarse, 4, 8)
    assert (up.size, up.jump, up.start) == (100, 16, 16.5)
    down = resized(up, 8, 4)
    assert (down.size, down.jump) == (100, 32)


UNPADDED = {"siamfc_alexnet", "siamfc_tiny"}  # their maps lose the receptive field: 64 px is too small


@pytest.fixture(scope="module", params=list_backbones())
def backbone_report(request):
    backbone = build_backbone(request.param)
    size = 127 if request.param in UNPADDED else 64
    return backbone, inspect_model(backbone, (3, size, size))


def test_every_backbone_inspects_and_its_totals_equal_sum_of_numel(backbone_report):
    backbone, report = backbone_report
    assert report.total_params == sum(p.numel() for p in backbone.parameters())
    assert sum(row.params for row in report.layers) == report.total_params
    assert report.total_macs == sum(row.macs for row in report.layers) > 0
    declared = backbone.output_shape()
    assert [m.name for m in report.feature_maps] == list(declared)
    fields = [m.receptive_field for m in report.feature_maps]
    assert all(rf is not None and rf > 1 for rf in fields) and fields == sorted(fields)
    assert [(m.stride, m.channels) for m in report.feature_maps] == [(s.stride, s.channels) for s in declared.values()]


@pytest.mark.parametrize("family", list_detectors())
def test_every_detector_family_inspects(family):
    cfg = config_from_dict({"data": {"input_size": 64},
                            "model": {"name": family, "backbone": "tiny", "neck_channels": 16}})
    model = build_detector(cfg.model, num_classes=3, input_size=64)
    report = inspect_model(model, (3, 64, 64))
    assert report.total_params == sum(p.numel() for p in model.parameters())
    body = next(m for m in model.modules() if isinstance(m, Backbone))  # the maps the head reads
    head = [m for m in report.feature_maps if m.head]
    assert [m.name for m in head] == list(body.output_shape())
    assert all(m.receptive_field and m.receptive_field > 1 for m in head)
    data = report.to_dict()
    assert all(set(layer) == LAYER_KEYS for layer in data["layers"])
    assert {"input", "layers", "feature_maps", "total_params", "total_macs"} <= set(data)
    json.dumps(data)  # plain data


def test_head_convs_see_with_their_maps_stride():
    """Through FPN's upsampling and adds, each level's head conv keeps its own map's stride as its jump."""
    cfg = config_from_dict({"model": {"name": "yolo", "backbone": "tiny", "neck_channels": 16}})
    model = build_detector(cfg.model, num_classes=2, input_size=64)
    report = inspect_model(model, (3, 64, 64))
    strides = [spec.stride for spec in model.body.output_shape().values()]
    assert [row.jump for row in report.layers if row.name.startswith("head.")] == strides
    assert report.merges == 4  # PAN: two top-down and two bottom-up adds


def boxes_file(tmp_path, sides: list[tuple[float, float]], image_side: int = 640):
    """A COCO file with one image_side x image_side image holding boxes of the given (w, h)."""
    annotations = [{"id": i + 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, w, h], "area": w * h, "iscrowd": 0}
                   for i, (w, h) in enumerate(sides)]
    path = tmp_path / "boxes.json"
    save_coco(path, {"images": [{"id": 1, "file_name": "a.jpg", "width": image_side, "height": image_side}],
                     "annotations": annotations, "categories": [{"id": 1, "name": "thing"}]})
    return path


def test_coverage_letterboxes_boxes_and_warns_about_anchors(tmp_path):
    path = boxes_file(tmp_path, [(64, 32), (400, 100), (600, 300)])  # letterboxed to 320: halved
    maps = [FeatureMap("p3", 8, 16, 120.0, head=True), FeatureMap("p5", 32, 16, 250.0, head=True)]
    found = coverage(path, 320, maps, {"p3": 200.0, "p5": 100.0})
    assert found["largest_box_side"] == 300 and found["boxes"] == 3
    by_name = {row["name"]: row for row in found["maps"]}
    assert by_name["p3"]["boxes_covered"] == pytest.approx(1 / 3, abs=1e-3)
    assert not by_name["p5"]["covers_largest"] and by_name["p5"]["boxes_covered"] == pytest.approx(2 / 3, abs=1e-3)
    assert any(w.startswith("p3: anchors up to 200 px") for w in found["warnings"])
    assert any(w.startswith("no map sees the largest boxes whole") for w in found["warnings"])
    assert not any(w.startswith("p5:") for w in found["warnings"])


def test_cli_json_for_a_backbone(capsys):
    assert main(["--backbone", "tiny", "--input", "3x64x96", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["input"] == [3, 64, 96] and data["branching"] is False
    assert data["total_params"] == sum(p.numel() for p in build_backbone("tiny").parameters())
    assert [m["name"] for m in data["feature_maps"]] == ["c2", "c3", "c4", "c5"]
    assert set(data["feature_maps"][0]) == {"name", "stride", "channels", "receptive_field"}
    assert data["layers"][0]["output_shape"] == [1, 16, 32, 48]


def test_cli_on_a_checkpoint_uses_its_input_size_and_classes(tmp_path, capsys):
    cfg = config_from_dict({"data": {"input_size": 96}, "model": {"name": "ssd", "backbone": "tiny",
                                                                   "neck_channels": 16}})
    model = build_detector(cfg.model, num_classes=2, input_size=96)
    path = tmp_path / "tiny.pt"
    categories = [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]
    save_checkpoint(path, {"config": cfg.to_dict(), "model": model.state_dict(), "categories": categories})
    assert main(["--checkpoint", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["input"] == [3, 96, 96]
    assert data["total_params"] == sum(p.numel() for p in model.parameters())
    assert [m["name"] for m in data["feature_maps"]] == ["c4", "c5", "e1", "e2"]  # ssd_extra's default maps


def test_cli_table_for_a_config_with_annotations(tmp_path, capsys):
    config = tmp_path / "yolo.yaml"
    config.write_text("data: {input_size: 64}\nmodel: {name: yolo, backbone: tiny, neck_channels: 16, "
                      "yolo: {anchors: [[10, 13], [30, 60], [500, 400]]}}\n")
    path = boxes_file(tmp_path, [(64, 64), (600, 200)])
    assert main(["--config", str(config), "--annotations", str(path)]) == 0
    out = capsys.readouterr().out
    assert "yolo detector: tiny backbone, pan neck, 1 class," in out and "input 3x64x64" in out
    assert "total: " in out and "largest path" in out and "feature maps:" in out
    assert "warning: p5: anchors up to 500 px, but a cell of this map sees only 375 px" in out
    assert "warning: p3" not in out


@pytest.mark.parametrize("argv, message", [
    (["--backbone", "resnet19"], "unknown backbone 'resnet19'"),
    (["--backbone", "tiny", "--input", "3x64"], "expected CxHxW"),
    (["--backbone", "tiny", "--input", "1x64x64"], "C must be 3"),
    (["--checkpoint", "missing.pt"], "checkpoint not found"),
    (["--backbone", "alexnet", "--input", "3x16x16"], "cannot run on this size"),
])
def test_cli_user_errors_end_with_one_error_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert captured.out == ""
