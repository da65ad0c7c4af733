"""python -m detection.visualize on a tiny checkpoint made here: PNGs of the expected size, chosen layers, and
user errors as one line; plus the saliency it draws points at the detection."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from datasets.core.errors import UserError
from detection.cli.visualize import main
from detection.config import config_from_dict
from detection.engine.checkpoint import save_checkpoint
from detection.inspect.activations import capture_maps
from detection.inspect.saliency import explain
from detection.models import build_detector
from detection.viz.features import DPI, GRID_SIZE, SALIENCY_SIZE

SIZE = 64
CATEGORIES = [{"id": 1, "name": "circle"}, {"id": 2, "name": "square"}]
GRID_PIXELS = (round(GRID_SIZE[1] * DPI), round(GRID_SIZE[0] * DPI))  # (height, width)
SALIENCY_PIXELS = (round(SALIENCY_SIZE[1] * DPI), round(SALIENCY_SIZE[0] * DPI))


def tiny_model(family: str):
    """An untrained family on the tiny backbone that keeps every candidate (score threshold 0)."""
    torch.manual_seed(0)
    cfg = config_from_dict({"data": {"input_size": SIZE},
                            "model": {"name": family, "backbone": "tiny", "neck_channels": 16,
                                      "postprocess": {"score_threshold": 0.0, "max_detections": 10}}})
    return cfg, build_detector(cfg.model, num_classes=len(CATEGORIES), input_size=SIZE)


@pytest.fixture(scope="module", params=["yolo", "faster_rcnn"])
def checkpoint(request, tmp_path_factory) -> Path:
    cfg, model = tiny_model(request.param)
    path = tmp_path_factory.mktemp(request.param) / "tiny.pt"
    save_checkpoint(path, {"config": cfg.to_dict(), "model": model.state_dict(), "categories": CATEGORIES})
    return path


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> Path:
    """A 96 x 72 picture (wider than high: letterboxing pads the bottom) with a bright square."""
    pixels = np.full((72, 96, 3), 40, np.uint8)
    pixels[20:50, 30:60] = (230, 200, 60)
    path = tmp_path_factory.mktemp("image") / "square.png"
    cv2.imwrite(str(path), pixels)
    return path


def size_of(path: Path) -> tuple[int, int]:
    picture = cv2.imread(str(path))
    assert picture is not None, path
    return picture.shape[:2]


def test_writes_feature_grids_filters_and_saliency_of_known_sizes(checkpoint, image, tmp_path, capsys):
    assert main(["--checkpoint", str(checkpoint), "--image", str(image), "--out", str(tmp_path)]) == 0
    names = sorted(p.name for p in tmp_path.glob("*.png"))
    assert names == ["features_c2.png", "features_c3.png", "features_c4.png", "features_c5.png", "filters.png",
                     "saliency.png"]
    for name in names:
        assert size_of(tmp_path / name) == (SALIENCY_PIXELS if name == "saliency.png" else GRID_PIXELS), name
    assert capsys.readouterr().out.count("wrote ") == len(names)


def test_chosen_layers_and_detection(checkpoint, image, tmp_path):
    layer = "model.backbone.body.stages.c3" if "faster_rcnn" in str(checkpoint) else "body.body.stages.c3"
    argv = ["--checkpoint", str(checkpoint), "--image", str(image), "--out", str(tmp_path), "--layers", layer,
            "--detection", "3", "--channels", "4"]
    assert main(argv) == 0
    assert size_of(tmp_path / f"features_{layer}.png") == GRID_PIXELS
    assert not (tmp_path / "features_c2.png").exists()


def test_saliency_is_a_gradient_of_the_chosen_score():
    """Pixels far from every window that sees the detection get no gradient; the maps are scaled into 0..1."""
    _, model = tiny_model("yolo")
    picture = torch.rand(3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    found = explain(model, picture, rank=1)
    assert found.count >= 1 and 0 <= found.score <= 1
    for heat in (found.gradient, found.cam):
        assert heat.shape == (SIZE, SIZE) and float(heat.min()) >= 0 and float(heat.max()) == pytest.approx(1)
    assert found.cam_map in {"p3", "p4", "p5"}


@pytest.mark.parametrize("extra, message", [
    (["--layers", "body.nothing"], "no module 'body.nothing'"),
    (["--layers", "head"], "head did not run"),
    (["--detection", "999"], "--detection 999: the model made"),
    (["--detection", "0"], "counts from 1"),
])
def test_user_errors_end_with_one_error_line(extra, message, image, tmp_path, capsys):
    cfg, model = tiny_model("yolo")
    path = tmp_path / "tiny.pt"
    save_checkpoint(path, {"config": cfg.to_dict(), "model": model.state_dict(), "categories": CATEGORIES})
    assert main(["--checkpoint", str(path), "--image", str(image), "--out", str(tmp_path / "out"), *extra]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


def test_a_layer_that_is_not_a_map_is_refused():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))
    assert capture_maps(model, torch.rand(1, 3, 8, 8), ["0"])["0"].shape == (4, 6, 6)
    with pytest.raises(UserError, match=r"2 puts out \[1, 2\], not a feature map"):
        capture_maps(model, torch.rand(1, 3, 8, 8), ["2"])


def test_missing_checkpoint_or_image_is_one_error_line(image, tmp_path, capsys):
    assert main(["--checkpoint", str(tmp_path / "none.pt"), "--image", str(image), "--out", str(tmp_path)]) == 1
    assert main(["--checkpoint", str(tmp_path / "none.pt"), "--image", str(tmp_path / "no.png"),
                 "--out", str(tmp_path)]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("error: ") for line in lines)
    assert "checkpoint not found" in lines[0] and "no.png" in lines[1]
