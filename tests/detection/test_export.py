"""Export round trips: every family to ONNX (run by onnxruntime) and TorchScript gives PyTorch's detections,
at other batch sizes and image sizes than it was traced with; the CLI, and its clear errors.
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest
import torch

from datasets.core.errors import UserError
from detection.cli.export import main as export_main
from detection.config import config_from_dict
from detection.deploy.check import compare, differences, sample_images, sample_proposals
from detection.deploy.exporter import export_detector
from detection.deploy.formats import quiet_tracing
from detection.deploy.runtime import load_exported, load_onnx
from detection.models import build_detector, list_detectors
from test_scripts import assert_one_error_line  # tests/detection is on sys.path (pytest prepend mode)

SIZE = 64
CATEGORIES = [{"id": 1, "name": "circle"}, {"id": 2, "name": "square"}, {"id": 3, "name": "triangle"}]
TRACE_BATCH = 2  # the fixed batch of families that score images one by one; runs use 3 to cross a chunk
FAMILIES = list_detectors()  # a new family gets these tests with no edit
TINY_SIAMFC = Path(__file__).resolve().parents[2] / "configs" / "siamfc_tiny.yaml"
DENSE = {"ssd": True, "yolo": True, "faster_rcnn": False, "fast_rcnn": False, "rcnn": False}  # any batch


# torchvision's SSD on the tiny backbone: SSD300's neck, default boxes, 300 x 300 stretch, candidates per class
TORCHVISION_SSD = {"neck": "ssd300_vgg", "features": ["c3", "c4"], "ssd": {
    "default_boxes": "torchvision", "fixed_size": 300, "top_k_per_class": True, "pre_nms_top_k": 20,
    "level_aspect_ratios": [[2.0], [2.0, 3.0], [2.0, 3.0], [2.0, 3.0], [2.0], [2.0]]}}


def tiny_model(family: str, threshold: float = 0.02, steps: int = 4, model: dict | None = None,
               **postprocess) -> torch.nn.Module:
    """The family on the tiny backbone at 64 px, after a few SGD steps on synthetic shapes (distinct scores);
    `model`: other model keys."""
    torch.manual_seed(0)
    cfg = config_from_dict({"data": {"input_size": SIZE}, "model": {
        "name": family, "backbone": "tiny", "neck_channels": 32, **(model or {}),
        "postprocess": {"score_threshold": threshold, "max_detections": 30, **postprocess}}})
    model = build_detector(cfg.model, num_classes=len(CATEGORIES), input_size=SIZE)
    images = sample_images(4, SIZE, seed=1)
    targets = [{"boxes": torch.tensor([[8.0, 8.0, 40.0, 36.0]]), "labels": torch.tensor([1 + i % 3])} for i in range(4)]
    proposals = [torch.tensor([[4.0, 4.0, 44.0, 40.0], [20.0, 20.0, 60.0, 60.0], [0.0, 0.0, 64.0, 64.0]])] * 4
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.005, momentum=0.9)
    model.train()
    for _ in range(steps):
        loss = sum(model(images, targets, proposals if model.takes_proposals else None).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    if family == "yolo" and steps:  # its head starts at a prior (every score 0.0046) that a few steps keep
        with torch.no_grad():
            for conv in model.head:
                conv.bias.normal_(0.0, 1.0, generator=torch.Generator().manual_seed(0))
    return model.eval()


@pytest.fixture(scope="module", params=[(f, fmt) for f in FAMILIES for fmt in ("onnx", "torchscript")],
                ids=lambda p: f"{p[0]}-{p[1]}")
def exported(request, tmp_path_factory):
    """(family, format, PyTorch model, the exported file loaded back)."""
    family, fmt = request.param
    model = tiny_model(family)
    path = tmp_path_factory.mktemp("export") / f"{family}.{fmt}"
    export_detector(model, family, CATEGORIES, fmt, path, batch=TRACE_BATCH)
    return family, fmt, model, load_exported(path, fmt, threads=1)


@pytest.mark.parametrize("batch,size", [(3, SIZE), (1, 96), (2, 128)])
def test_exported_model_gives_pytorch_detections(exported, batch, size):
    family, fmt, model, runtime = exported
    report = compare(model, runtime, sample_images(batch, size, seed=size + batch))
    assert report["detections"] > 0, "the test needs detections to compare"
    assert report["match"], report


def test_dynamic_axes_per_family(exported):
    family, _, model, runtime = exported
    meta = runtime.meta
    with torch.no_grad():
        dense = model.dense_outputs(torch.zeros(1, 3, SIZE, SIZE)) is not None
    assert dense == DENSE.get(family, dense)
    assert meta.batch == (None if dense else TRACE_BATCH)
    assert meta.dynamic_axes["images"] == ({"0": "batch", "2": "height", "3": "width"} if dense
                                           else {"2": "height", "3": "width"})
    assert meta.inputs == ["images", "score_threshold"] + (["proposals"] if model.takes_proposals else [])
    assert (meta.family, meta.input_size, meta.categories) == (family, SIZE, CATEGORIES)
    assert meta.postprocess["score_threshold"] == 0.02 and meta.postprocess["max_detections"] == 30


def test_exported_model_runs_at_the_calls_values(exported):
    """A call's score threshold (the graph's input) and max detections (a cut of the graph's rows) reach the
    exported model as they reach PyTorch's."""
    family, fmt, model, runtime = exported
    images = sample_images(2, SIZE, seed=11)
    proposals = sample_proposals(model, images)
    for call in ({"score_threshold": 0.0, "max_detections": 200}, {"score_threshold": 0.3, "max_detections": 3}):
        with torch.no_grad():
            want = model(images, None, proposals, **call)
        report = differences(runtime(images, None, proposals, **call), want)
        assert report["match"], (call, report)
        assert report["detections"] > 60 or call["score_threshold"] > 0, "the test needs many detections"


@pytest.mark.parametrize("family", FAMILIES)
def test_onnx_call_goes_below_the_checkpoints_threshold_and_above_its_max(family, tmp_path):
    """The exported file's own post-processing (the checkpoint's) is only the default of a call."""
    model = tiny_model(family)
    images = sample_images(3, SIZE, seed=4)
    proposals = sample_proposals(model, images)
    with torch.no_grad():
        every = model(images, None, proposals, score_threshold=0.0, max_detections=300)
    scores = torch.cat([out["scores"] for out in every])
    own = float(scores.min() + scores.max()) / 2  # the checkpoint's threshold: some detections score below it
    model.postprocess_options = dataclasses.replace(model.postprocess_options, score_threshold=own, max_detections=5)
    export_detector(model, family, CATEGORIES, "onnx", tmp_path / "m.onnx", batch=1)
    runtime = load_onnx(tmp_path / "m.onnx", threads=1)
    default = runtime(images, None, proposals)
    assert all(len(out["scores"]) <= 5 and (out["scores"] >= own).all() for out in default)
    assert compare(model, runtime, images)["match"]
    got = runtime(images, None, proposals, score_threshold=0.0, max_detections=300)
    assert differences(got, every)["match"]
    assert max(len(out["scores"]) for out in got) > 5
    assert float(torch.cat([out["scores"] for out in got]).min()) < own


@pytest.mark.parametrize("family", FAMILIES)
def test_no_detection_at_all(family, tmp_path):
    model = tiny_model(family, threshold=0.999, steps=0)
    export_detector(model, family, CATEGORIES, "onnx", tmp_path / "m.onnx", batch=1)
    runtime = load_onnx(tmp_path / "m.onnx", threads=1)
    images = sample_images(2, SIZE)
    outputs = runtime(images, None, [torch.tensor([[0.0, 0.0, 32.0, 32.0]])] * 2 if model.takes_proposals else None)
    assert [len(out["scores"]) for out in outputs] == [0, 0]
    assert compare(model, runtime, images)["match"]


@pytest.mark.parametrize("family", ["ssd", "faster_rcnn"])
def test_class_agnostic_nms_and_few_detections(family, tmp_path):
    model = tiny_model(family, class_agnostic=True, nms_iou=0.3, max_detections=5)
    export_detector(model, family, CATEGORIES, "onnx", tmp_path / "m.onnx", batch=1)
    report = compare(model, load_onnx(tmp_path / "m.onnx", threads=1), sample_images(3, SIZE, seed=9))
    assert report["detections"] == 15 and report["match"], report


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_torchvision_ssd_exports_with_its_stretch(fmt, tmp_path):
    """With fixed_size the graph stretches any image to 300 x 300 and maps the boxes back: the size stays free."""
    model = tiny_model("ssd", model=TORCHVISION_SSD)
    export_detector(model, "ssd", CATEGORIES, fmt, tmp_path / f"m.{fmt}", batch=TRACE_BATCH)
    runtime = load_exported(tmp_path / f"m.{fmt}", fmt, threads=1)
    for batch, size in [(3, SIZE), (2, 128)]:
        report = compare(model, runtime, sample_images(batch, size, seed=size + batch))
        assert report["detections"] > 20 and report["match"], report


def test_runtime_makes_proposals_as_the_model_does(tmp_path):
    model = tiny_model("fast_rcnn")
    model.proposal_input.cfg.top_n_test = 200
    export_detector(model, "fast_rcnn", CATEGORIES, "onnx", tmp_path / "m.onnx", batch=1)
    runtime = load_onnx(tmp_path / "m.onnx", threads=1)
    assert runtime.meta.proposals["method"] == "selective_search" and runtime.meta.proposals["top_n_test"] == 200
    images = sample_images(2, SIZE, seed=5)
    with torch.no_grad():
        report = differences(runtime(images), model(images))  # neither is given proposals: selective search
    assert report["detections"] > 0 and report["match"], report


def test_onnx_file_carries_what_the_service_needs(tmp_path):
    onnx = pytest.importorskip("onnx")
    model = tiny_model("ssd")
    export_detector(model, "ssd", CATEGORIES, "onnx", tmp_path / "m.onnx", name="shapes", version="epoch-3",
                    metrics={"bbox_mAP": 0.5, "note": "not a number"})
    props = {p.key: p.value for p in onnx.load(str(tmp_path / "m.onnx")).metadata_props}
    assert props["detpipe_format"] == "detpipe-export" and props["family"] == '"ssd"'
    assert props["input_size"] == "64" and '"triangle"' in props["categories"]
    assert '"nms_iou": 0.5' in props["postprocess"]
    meta = load_onnx(tmp_path / "m.onnx").meta
    assert (meta.name, meta.version, meta.metrics) == ("shapes", "epoch-3", {"bbox_mAP": 0.5})


def test_onnx_without_our_metadata_is_refused(tmp_path):
    pytest.importorskip("onnx")
    path = tmp_path / "plain.onnx"
    with quiet_tracing():
        torch.onnx.export(torch.nn.Linear(2, 2), (torch.zeros(1, 2),), str(path), dynamo=False)
    with pytest.raises(UserError, match="not a model exported by detection.export"):
        load_onnx(path)


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_cli_exports_a_checkpoint_and_checks_it(tiny_checkpoint, tmp_path, capsys, fmt):
    out = tmp_path / f"model.{fmt}"
    assert export_main(["--checkpoint", str(tiny_checkpoint), "--format", fmt, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"faster_rcnn -> {out} ({fmt}" in printed and "batch 1; free axes: height, width" in printed
    assert "matches PyTorch: " in printed
    meta = load_exported(out, fmt).meta
    assert meta.family == "faster_rcnn" and meta.version == "epoch-2" and meta.batch == 1


def test_cli_unsupported_format_is_one_error_line(tiny_checkpoint, tmp_path, capsys):
    args = ["--checkpoint", str(tiny_checkpoint), "--format", "tflite", "--out", str(tmp_path / "m.tflite")]
    assert export_main(args) == 1
    assert_one_error_line(capsys, "--format 'tflite' is not supported", "onnx, torchscript")
    assert not list(tmp_path.iterdir())


def test_missing_onnxruntime_is_a_clear_error(tiny_checkpoint, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` now raises ImportError
    args = ["--checkpoint", str(tiny_checkpoint), "--format", "onnx", "--out", str(tmp_path / "m.onnx")]
    assert export_main(args) == 1
    assert_one_error_line(capsys, "'onnxruntime', which is not installed", "pip install 'detpipe[export]'")
    assert not list(tmp_path.iterdir())
    with pytest.raises(UserError, match="running an ONNX model needs the Python package 'onnxruntime'"):
        load_onnx(tmp_path / "m.onnx")


@pytest.fixture(scope="module")
def siamfc_checkpoint(tmp_path_factory):
    """(best.pt of configs/siamfc_tiny.yaml with seeded weights and a moved bias, its network in eval mode)."""
    from detection.config import load_config
    from detection.engine.checkpoint import save_checkpoint
    from detection.tracking.siamfc_net import build_siamfc_net

    torch.manual_seed(0)
    cfg = load_config(TINY_SIAMFC, ["model.siamfc.tracking.scales=5", "output_dir=runs/siamfc_x"])
    net = build_siamfc_net(cfg.model).eval()
    with torch.no_grad():
        net.bias.fill_(-0.5)  # a trained net's bias; the graph must keep it
    path = tmp_path_factory.mktemp("siamfc") / "best.pt"
    save_checkpoint(path, {"config": cfg.to_dict(), "model": net.state_dict(), "categories": [], "epoch": 3})
    return path, net


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_siamfc_branches_export_and_match_pytorch(siamfc_checkpoint, tmp_path, capsys, fmt):
    from detection.deploy.siamfc_runtime import compare_siamfc, load_siamfc, sample_crops

    checkpoint, net = siamfc_checkpoint
    out = tmp_path / f"tracker.{fmt}"
    assert export_main(["--checkpoint", str(checkpoint), "--format", fmt, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for branch in ("template", "search"):
        assert f"siamfc {branch} branch -> {tmp_path / f'tracker-{branch}.{fmt}'} ({fmt}" in printed
    assert "matches PyTorch: max template diff" in printed and not out.exists()
    exported = load_siamfc(tmp_path / f"tracker-search.{fmt}", fmt, threads=1)  # either file names the pair
    assert compare_siamfc(net, exported, seed=4)["match"]
    meta = exported.metas["search"]
    assert (meta.family, meta.version, meta.batch, meta.inputs) == ("siamfc", "epoch-3", None, ["search", "template"])
    assert exported.tracking.scales == 5 and exported.response_size == net.response_size
    exemplars, searches = sample_crops(net, scales=5, seed=2)
    with torch.no_grad():  # the batch is free on both branches; one template per crop or one for all
        templates = net.embed(torch.cat([exemplars] * 5))
        assert torch.allclose(exported.embed(torch.cat([exemplars] * 5)), templates, atol=1e-5)
        for kernels in (templates, templates[:1]):
            want = net.respond(kernels, net.embed(searches))
            assert torch.allclose(exported.search(kernels, searches), want, atol=1e-6)
        smaller = searches[:2, :, :191, :191]  # another search size gives a smaller response
        assert exported.search(templates[:1], smaller).shape[-1] == net.response_size - 64 // net.stride


def test_siamfc_tracker_on_onnx_branches_follows_as_pytorch(siamfc_checkpoint, tmp_path):
    from detection.deploy.siamfc import export_siamfc
    from detection.deploy.siamfc_runtime import exported_tracker
    from detection.tracking.siamfc import SiamFCTracker

    _, net = siamfc_checkpoint
    export_siamfc(net, "onnx", tmp_path / "t.onnx")
    frames = [(sample_images(1, 160, seed=s)[0].permute(1, 2, 0).numpy() * 255).astype("uint8") for s in (1, 1, 2)]
    frames[1] = frames[1][:, list(range(4, 160)) + [159] * 4]  # the scene moves 4 px left
    onnx_tracker, torch_tracker = exported_tracker(tmp_path / "t.onnx", threads=1), SiamFCTracker(net)
    for tracker in (onnx_tracker, torch_tracker):
        tracker.init(frames[0], [40.0, 50.0, 90.0, 100.0])
    for frame in frames[1:]:
        got, want = onnx_tracker.update(frame), torch_tracker.update(frame)
        assert abs(got[1] - want[1]) < 1e-5 and abs(got[0] - want[0]).max() < 1e-3, (got, want)


def test_siamfc_branch_is_not_a_detector(siamfc_checkpoint, tmp_path):
    from detection.deploy.siamfc import export_siamfc

    export_siamfc(siamfc_checkpoint[1], "onnx", tmp_path / "t.onnx")
    with pytest.raises(UserError, match="t-template.onnx: the template branch of a siamfc tracker, not a detector"):
        load_onnx(tmp_path / "t-template.onnx")
