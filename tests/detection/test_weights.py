"""detection.weights: torchvision imports give torchvision's own detections; fetch against a local HTTP server;
remapping by category name; fine-tuning from a checkpoint of other classes; bad input is one error line.

No weights are downloaded: a "torchvision file" is torchvision's own model (weights=None) with BatchNorm statistics
measured on images and heads scaled so scores spread, saved where torchvision's cache keeps it.
"""
from __future__ import annotations

import functools
import hashlib
import http.server
import json
import socket
import threading
from pathlib import Path

import pytest
import torch
from torchvision.models import get_model

from datasets.synthetic.shapes import make_shapes
from detection.cli.weights import main
from detection.config import config_from_dict, load_config
from detection.engine.checkpoint import load_checkpoint, load_model, save_checkpoint
from detection.inference.predictor import Predictor
from detection.models import build_detector
from detection.tasks import build_trainer
from detection.weights.catalog import WeightsEntry, cached_path, find
from detection.weights.fetch import fetch
from detection.weights.finetune import start_detector
from detection.weights.remap import ClassRows
from detection.weights.torchvision_import import import_torchvision
from tiny_run import ROOT, tiny_config
from weights_files import FASTER_RCNNS, pictures, torchvision_file

MNV3_320 = "fasterrcnn_mobilenet_v3_large_320_fpn"
SMALL = {"min_size": 112, "max_size": 224, "rpn_pre_nms_top_n_test": 30, "rpn_post_nms_top_n_test": 30}
MEASURED: dict[str, tuple[float, float]] = {}  # name -> (largest box, largest score difference)


@pytest.fixture
def torch_home(tmp_path: Path, monkeypatch) -> Path:
    home = tmp_path / "torch"
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.delenv("DETPIPE_WEIGHTS_MIRROR", raising=False)
    return home


@pytest.fixture(scope="module")
def mnv3_file(tmp_path_factory) -> Path:
    """torchvision's fasterrcnn_mobilenet_v3_large_320_fpn file (made here, see torchvision_file)."""
    return torchvision_file(MNV3_320, tmp_path_factory.mktemp("tv") / find(MNV3_320).file_name)


def compare(theirs: list[dict], ours: list[dict], name: str) -> None:
    """The same detections: count, labels, boxes and scores; real ones (many, scores spread)."""
    box_diff = score_diff = 0.0
    for a, b in zip(theirs, ours, strict=True):
        assert len(a["boxes"]) >= 10 and a["scores"].max() > 0.3 and a["scores"].unique().numel() > 8, a["scores"]
        assert len(a["boxes"]) == len(b["boxes"])
        assert torch.equal(a["labels"], b["labels"])
        box_diff = max(box_diff, (a["boxes"] - b["boxes"]).abs().max().item())
        score_diff = max(score_diff, (a["scores"] - b["scores"]).abs().max().item())
    before = MEASURED.get(name, (0.0, 0.0))
    MEASURED[name] = (max(before[0], box_diff), max(before[1], score_diff))
    assert box_diff <= 1e-4 and score_diff <= 1e-6, (name, box_diff, score_diff)


def test_cli_import_of_the_320_model_gives_torchvision_detections(torch_home, mnv3_file, tmp_path, capsys):
    """Its own sizes (320 / 640, 150 proposals), from torch's cache, through `detpipe weights import`."""
    cache = cached_path(find(MNV3_320))
    cache.parent.mkdir(parents=True)
    cache.write_bytes(mnv3_file.read_bytes())
    out = tmp_path / "coco.pt"
    assert main(["import", f"torchvision:{MNV3_320}", "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    loaded = load_model(out)
    ours, cfg, state = loaded.model, loaded.config, loaded.state
    assert cfg.data.input_size == 320 and len(state["categories"]) == 90
    assert state["categories"][0] == {"id": 1, "name": "person"} and state["categories"][11]["name"] == "N/A"
    theirs = get_model(MNV3_320, weights="DEFAULT").eval()  # loads the same cached file
    images = pictures(1, 320, 320, 1)
    with torch.no_grad():
        compare(theirs(list(images)), ours(images), MNV3_320)


@pytest.mark.parametrize("name", [n for n in FASTER_RCNNS if n != MNV3_320])
def test_import_gives_torchvision_detections(name, torch_home, tmp_path):
    """Small sizes and few proposals on both sides, non-square images: torchvision's resize both ways."""
    torchvision_file(name, cached_path(find(name)))
    theirs = get_model(name, weights="DEFAULT", **SMALL).eval()
    overrides = [f"model.faster_rcnn.{k}={v}" for k, v in SMALL.items()] + [f"data.input_size={SMALL['min_size']}"]
    import_torchvision(name, tmp_path / "ckpt.pt", overrides=overrides)
    ours = load_model(tmp_path / "ckpt.pt").model
    images = pictures(2, 112, 88, 2)
    with torch.no_grad():
        compare(theirs(list(images)), ours(images), name)


def test_import_with_categories_of_other_data(torch_home, tmp_path):
    """A model torchvision's references trained on 3 classes: label i is the category with id i."""
    weights = torchvision_file(MNV3_320, tmp_path / "mine.pth", num_classes=4)
    coco = tmp_path / "mine.json"
    coco.write_text(json.dumps({"categories": [{"id": 3, "name": "tree"}, {"id": 1, "name": "car"}]}))
    out = tmp_path / "mine.pt"
    assert main(["import", f"torchvision:{MNV3_320}", "--file", str(weights), "--categories", str(coco),
                 "--out", str(out)]) == 0
    assert load_checkpoint(out)["categories"] == [{"id": 1, "name": "car"}, {"id": 2, "name": "N/A"},
                                                  {"id": 3, "name": "tree"}]


# SSD300 -----------------------------------------------------------------------------------------------------------

SSD300 = "ssd300_vgg16"


def ssd300_file(path: Path) -> Path:
    """torchvision's ssd300_vgg16 (VGG's own init, no BatchNorm to fold) with its class predictors scaled and the
    background favoured, so that scores spread over many classes up to about 0.8 (a random head gives near-uniform
    scores of 1/91, all ties with the 0.01 threshold)."""
    torch.manual_seed(0)
    model = get_model(SSD300, weights=None, weights_backbone=None)
    with torch.no_grad():
        for conv in model.head.classification_head.module_list:
            conv.weight.mul_(0.5)
            conv.bias.view(-1, 91)[:, 0] += 6.0  # [anchors x classes]: class 0 of each anchor
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return path


def test_ssd300_import_gives_torchvision_detections(torch_home, tmp_path, capsys):
    """VGG-16's conv4_3 through L2Norm, fc6/fc7, default boxes, 300 x 300 stretch, 0..255 normalisation, 400 per
    class, NMS 0.45, 200 per image: the same detections on non-square images, and through the predictor."""
    weights = ssd300_file(tmp_path / "ssd300.pth")
    out = tmp_path / "ssd300.pt"
    assert main(["import", f"torchvision:{SSD300}", "--file", str(weights), "--out", str(out)]) == 0
    loaded = load_model(out)
    assert loaded.config.data.input_size == 300 and len(loaded.categories) == 90
    theirs = get_model(SSD300, weights=None, weights_backbone=None).eval()
    theirs.load_state_dict(torch.load(weights, weights_only=True))
    images = pictures(2, 200, 260, 2)
    with torch.no_grad():
        compare(theirs(list(images)), loaded.model(images), SSD300)
    pixels = (pictures(1, 300, 300, 3)[0].permute(1, 2, 0) * 255).round().to(torch.uint8)
    with torch.no_grad():  # the predictor gives the model the photo at its own size, as torchvision is given it
        expected = theirs([pixels.permute(2, 0, 1).float() / 255])[0]
    answer = Predictor.from_checkpoint(out, device="cpu").predict([pixels.numpy()])[0]
    assert len(answer) == len(expected["boxes"]) >= 10
    for found, box, score, label in zip(answer, expected["boxes"], expected["scores"], expected["labels"]):
        assert found["category_id"] == int(label) and found["score"] == pytest.approx(float(score), abs=1e-5)
        x1, y1, x2, y2 = box.tolist()  # answers are rounded: scores to 5 decimals, boxes to 2; the predictor's
        # model has its BatchNorm folded (prepare_for_inference), which moves scores by about 1e-6
        assert found["bbox"] == pytest.approx([x1, y1, x2 - x1, y2 - y1], abs=0.011)
    mine = tmp_path / "mine.json"  # remapped onto other categories: person's rows kept for each default box
    mine.write_text(json.dumps({"categories": [{"id": 1, "name": "tree"}, {"id": 2, "name": "Person"}]}))
    assert main(["import", str(out), "--categories", str(mine), "--out", str(tmp_path / "mine.pt")]) == 0
    key = "head.classification_head.module_list.0.weight"
    old, new = loaded.state["model"][key], load_model(tmp_path / "mine.pt").model.state_dict()[key]
    assert new.shape[0] == 4 * 3 and all(torch.equal(new[a * 3 + 2], old[a * 91 + 1]) for a in range(4))


def test_ssd300_recipe_is_the_import(tmp_path, capsys):
    """configs/ssd300_vgg16.yaml trains the model the import writes (its pretrained file aside), and SSD weights
    given for a Faster R-CNN are named as what they are."""
    from detection.weights.torchvision_import import import_config

    recipe = load_config(ROOT / "configs" / "ssd300_vgg16.yaml").to_dict()["model"]
    imported = config_from_dict(import_config(SSD300, coco_file=True)).to_dict()["model"]
    assert {**recipe, "pretrained": ""} == imported
    weights = ssd300_file(tmp_path / "ssd300.pth")
    assert main(["import", "torchvision:fasterrcnn_resnet50_fpn", "--file", str(weights),
                 "--out", str(tmp_path / "x.pt")]) == 1
    assert "torchvision:ssd300_vgg16 weights, not torchvision:fasterrcnn_resnet50_fpn" in error_line(capsys)


SSDLITE = "ssdlite320_mobilenet_v3_large"


def ssdlite_file(path: Path) -> Path:
    """torchvision's ssdlite320_mobilenet_v3_large (reduced tail) with BatchNorm statistics measured on pictures,
    then folded (var * c^2, weight * c) so that eps matters, and class predictors scaled so that scores spread."""
    torch.manual_seed(0)
    model = get_model(SSDLITE, weights=None, weights_backbone=None)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        for norm in norms:
            norm.momentum = None
            norm.reset_running_stats()
        model.train()
        batch, _ = model.transform(list(pictures(4, 320, 320, 9)))
        model.head(list(model.backbone(batch.tensors).values()))
        for norm in norms:
            norm.running_var.mul_(0.5 ** 2)
            norm.weight.mul_(0.5)
        for block in model.head.classification_head.module_list:
            block[1].weight.mul_(20.0)
            block[1].bias.view(-1, 91)[:, 0] += 2.0  # [anchors x classes]: class 0 of each anchor
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return path


def test_ssdlite320_import_gives_torchvision_detections(torch_home, tmp_path):
    """MobileNetV3 with the reduced tail cut inside block 13, SSDLite's extra levels and head, default boxes spread
    over each map, 320 x 320 stretch, -1..1 normalisation, 300 per class, NMS 0.55, 300 per image."""
    weights = ssdlite_file(cached_path(find(SSDLITE)))  # in torch's cache, where import looks without --file
    import_torchvision(SSDLITE, tmp_path / "ssdlite.pt")
    loaded = load_model(tmp_path / "ssdlite.pt")
    assert loaded.config.data.input_size == 320 and loaded.config.model.backbone == "mobilenet_v3_large_ssdlite"
    theirs = get_model(SSDLITE, weights=None, weights_backbone=None).eval()
    theirs.load_state_dict(torch.load(weights, weights_only=True))
    with torch.no_grad():
        compare(theirs(list(pictures(2, 200, 260, 2))), loaded.model(pictures(2, 200, 260, 2)), SSDLITE)
        square = pictures(1, 320, 320, 4)
        compare(theirs(list(square)), loaded.model(square), SSDLITE)


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_bad_imports_are_one_error_line_and_write_nothing(torch_home, mnv3_file, tmp_path, capsys):
    out = tmp_path / "out.pt"
    listed = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], listed)
    text = tmp_path / "text.pth"
    text.write_text("not weights")
    dup = tmp_path / "dup.json"
    dup.write_text(json.dumps({"categories": [{"id": 1, "name": "car"}, {"id": 2, "name": "Car"}]}))
    cases = [
        (["--file", str(listed)], "not a state_dict"),
        (["--file", str(text)], "not a readable weights file"),
        (["--file", str(mnv3_file), "--categories", str(dup)], "both named"),
        ([], "fetch it first: detpipe weights fetch fasterrcnn_resnet50_fpn"),
    ]
    for extra, expected in cases:
        assert main(["import", "torchvision:fasterrcnn_resnet50_fpn" if not extra or "--categories" not in extra
                     else f"torchvision:{MNV3_320}", *extra, "--out", str(out)]) == 1
        assert expected in error_line(capsys)
    assert main(["import", "torchvision:fasterrcnn_resnet50_fpn", "--file", str(mnv3_file), "--out", str(out)]) == 1
    line = error_line(capsys)
    assert "torchvision:fasterrcnn_mobilenet_v3_large_fpn" in line and "not torchvision:fasterrcnn_resnet50_fpn" in line
    assert "'backbone.body.conv1.weight'" in line or "backbone.body.0.0.weight" in line
    assert main(["import", "torchvision:fasterrcnn_resnet50", "--out", str(out)]) == 1
    assert "did you mean fasterrcnn_resnet50_fpn" in error_line(capsys)
    assert not out.exists() and not list(tmp_path.glob(".out.pt*"))


# fetch ----------------------------------------------------------------------------------------------------------


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server(tmp_path: Path):
    """A folder served over HTTP on 127.0.0.1: (folder, base URL)."""
    folder = tmp_path / "served"
    folder.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_fetch_with_the_right_hash_lands_in_the_cache(torch_home, server, monkeypatch):
    folder, url = server
    data = b"weights" * 1000
    name = f"tiny-{hashlib.sha256(data).hexdigest()[:8]}.pth"
    (folder / name).write_bytes(data)
    entry = WeightsEntry(name="tiny", model="tiny", weights="V1", url=f"https://example.invalid/models/{name}",
                         size_mb=0.0, licence="", kind="backbone", categories=())
    monkeypatch.setenv("DETPIPE_WEIGHTS_MIRROR", url + "/")
    path = fetch(entry, progress=False)
    assert path == torch_home / "hub" / "checkpoints" / name and path.read_bytes() == data
    assert [p.name for p in path.parent.iterdir()] == [name]


def test_fetch_with_a_wrong_hash_is_refused_and_leaves_nothing(torch_home, server, monkeypatch, capsys):
    folder, url = server
    entry = find("resnet18")
    (folder / entry.file_name).write_bytes(b"not resnet18")
    monkeypatch.setenv("DETPIPE_WEIGHTS_MIRROR", url)
    assert main(["fetch", "resnet18", "--no-progress"]) == 1
    line = error_line(capsys)
    assert f"does not start with {entry.sha256_prefix}" in line and url in line
    cache = torch_home / "hub" / "checkpoints"
    assert not cache.exists() or not list(cache.iterdir())


def test_fetch_without_network_is_one_error_naming_the_url(torch_home, monkeypatch, capsys):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("DETPIPE_WEIGHTS_MIRROR", f"http://127.0.0.1:{port}")
    assert main(["fetch", "resnet18", "--no-progress"]) == 1
    assert f"cannot download http://127.0.0.1:{port}/{find('resnet18').file_name}" in error_line(capsys)
    assert main(["fetch", "resnet5"]) == 1
    assert "did you mean resnet50" in error_line(capsys)


def test_list_names_every_detector_and_backbone(torch_home, capsys):
    assert main(["list", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    names = {row["name"] for row in rows}
    assert set(FASTER_RCNNS) | {"ssd300_vgg16", "ssdlite320_mobilenet_v3_large", "resnet50", "mobilenet_v3_large",
                                "vgg16", "vgg16.IMAGENET1K_FEATURES"} <= names
    first = rows[0]
    assert first["url"].endswith(first["file"]) and first["size_mb"] > 0 and first["licence"] and not first["cached"]


# remap and fine-tune --------------------------------------------------------------------------------------------

TINY = ROOT / "configs" / "faster_rcnn_tiny.yaml"


def tiny_checkpoint(path: Path, names: list[str], seed: int = 1) -> dict:
    """A (random) Faster R-CNN on the tiny backbone with categories `names`, saved as our checkpoint."""
    cfg = load_config(TINY, ["data.input_size=64"])
    torch.manual_seed(seed)
    model = build_detector(cfg.model, len(names), 64)
    categories = [{"id": i, "name": n} for i, n in enumerate(names, 1)]
    state = {"config": cfg.to_dict(), "model": model.state_dict(), "categories": categories, "metrics": {}}
    save_checkpoint(path, state)
    return state


def test_remap_keeps_known_rows_bit_for_bit_and_new_ones_fresh(tmp_path, capsys):
    old = tiny_checkpoint(tmp_path / "old.pt", ["cat", "dog", "bird"])
    new = tmp_path / "new.json"
    new.write_text(json.dumps({"categories": [{"id": 5, "name": "Bird"}, {"id": 7, "name": "fish"},
                                              {"id": 9, "name": "cat"}], "images": [], "annotations": []}))
    assert main(["import", str(tmp_path / "old.pt"), "--categories", str(new), "--out", str(tmp_path / "n.pt")]) == 0
    assert "class rows kept for 2 of 3 categories (fresh: fish)" in capsys.readouterr().out
    state = load_checkpoint(tmp_path / "n.pt")
    assert [c["name"] for c in state["categories"]] == ["Bird", "fish", "cat"]
    cfg = load_config(TINY, ["data.input_size=64"])
    torch.manual_seed(0)
    fresh = build_detector(cfg.model, 3, 64).state_dict()
    rows = {"model.roi_heads.box_predictor.cls_score": 1, "model.roi_heads.box_predictor.bbox_pred": 4}
    for prefix, width in rows.items():
        for suffix in ("weight", "bias"):
            key = f"{prefix}.{suffix}"
            a, b, f = old["model"][key], state["model"][key], fresh[key]
            block = lambda t, label: t[label * width:(label + 1) * width]  # noqa: E731
            assert torch.equal(block(b, 0), block(a, 0))  # background
            assert torch.equal(block(b, 1), block(a, 3)) and torch.equal(block(b, 3), block(a, 1))  # bird, cat
            assert torch.equal(block(b, 2), block(f, 2)) and not torch.equal(block(b, 2), block(a, 2))  # fish
    others = [k for k in old["model"] if "box_predictor" not in k]
    assert others and all(torch.equal(old["model"][k], state["model"][k]) for k in others)


def test_class_rows_of_an_anchor_head_move_per_anchor():
    """YOLO's layout: per anchor 5 rows (box, objectness) then one per class; 2 anchors, 3 -> 2 classes."""
    old = torch.arange(2 * 8, dtype=torch.float32)[:, None]
    fresh = -torch.ones(2 * 7, 1)
    out = ClassRows(5, 0, 1).remap(old, fresh, [2, None], 3, 2)
    assert out[:, 0].tolist() == [0, 1, 2, 3, 4, 7, -1, 8, 9, 10, 11, 12, 15, -1]


def test_remap_with_duplicate_names_is_one_error(tmp_path, capsys):
    tiny_checkpoint(tmp_path / "old.pt", ["cat", "dog"])
    dup = tmp_path / "dup.json"
    dup.write_text(json.dumps({"categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "cat "}]}))
    assert main(["import", str(tmp_path / "old.pt"), "--categories", str(dup), "--out", str(tmp_path / "n.pt")]) == 1
    assert "both named" in error_line(capsys) and not (tmp_path / "n.pt").exists()


@pytest.fixture(scope="module")
def shapes_64(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("shapes64")
    make_shapes(out, 4, seed=5, image_size=64, min_size=12, max_size=32)
    return out


def test_finetune_from_a_checkpoint_of_other_classes(tmp_path, shapes_64, capsys):
    old = tiny_checkpoint(tmp_path / "old.pt", ["square", "tree"])
    cfg = tiny_config(tmp_path / "run", shapes_64, **{"model.pretrained": str(tmp_path / "old.pt"),
                                                      "data.input_size": "64", "train.batch_size": "4",
                                                      "data.val.annotations": "", "data.val.images": ""})
    trainer = build_trainer(cfg, progress=False)
    weights = trainer.model.state_dict()
    body = [k for k in weights if ".body." in k]
    assert body and all(torch.equal(weights[k], old["model"][k]) for k in body)
    cls = "model.roi_heads.box_predictor.cls_score.weight"  # circle, square, triangle; square was label 1
    assert torch.equal(weights[cls][2], old["model"][cls][1]) and not torch.equal(weights[cls][1], old["model"][cls][1])
    trainer.fit()
    line = capsys.readouterr().out
    assert "class rows kept for 1 of 3 categories (fresh: circle, triangle)" in line and "0 tensors fresh" in line
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert record["type"] == "pretrained" and record["class_rows_kept"] == 1 and record["fresh"] == 0
    assert record["new_classes"] == ["circle", "triangle"] and record["loaded"] == record["tensors"] == len(weights)


def test_pretrained_backbone_state_dict_still_works(tmp_path, shapes_64):
    cfg = load_config(TINY, ["data.input_size=64"])
    torch.manual_seed(3)
    backbone = build_detector(cfg.model, 3, 64).model.backbone.body
    torch.save(backbone.state_dict(), tmp_path / "backbone.pth")
    cfg.model.pretrained = str(tmp_path / "backbone.pth")
    model, record = start_detector(cfg.model, [{"id": 1, "name": "a"}], 64)
    assert record is None
    loaded = model.model.backbone.body.state_dict()
    assert all(torch.equal(v, loaded[k]) for k, v in backbone.state_dict().items())


def test_finetune_recipe_runs_a_step_from_a_local_import(mnv3_file, shapes_64, tmp_path, capsys):
    ckpt = tmp_path / "coco.pt"
    assert main(["import", f"torchvision:{MNV3_320}", "--file", str(mnv3_file), "--out", str(ckpt)]) == 0
    overrides = {"output_dir": tmp_path / "run", "model.pretrained": ckpt, "device": "cpu", "train.batch_size": 2,
                 "data.train.annotations": shapes_64 / "annotations.json", "data.train.images": shapes_64 / "images",
                 "data.val.annotations": "", "data.val.images": ""}
    cfg = load_config(ROOT / "configs" / "finetune_faster_rcnn_mobilenet_320.yaml",
                      [f"{k}={v}" for k, v in overrides.items()])
    trainer = build_trainer(cfg, progress=False)
    assert "0 tensors fresh" in capsys.readouterr().out  # the recipe is the import's architecture
    images, targets = next(iter(trainer.loader(trainer.train_set, True, cfg.seed)))
    losses = trainer.train_step(images, targets)
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values()), losses


def test_report_measured_differences():
    """Not a check: prints what the import-equality tests measured (pytest -s shows it)."""
    for name, (box, score) in MEASURED.items():
        print(f"{name}: largest box difference {box:.3g} px, largest score difference {score:.3g}")
