"""The detector contract (detection/models/base.py), checked on every registered family with no edit per family.

Each family is built from its options' defaults on the tiny backbone: losses, outputs, batching, checkpoint round trip.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from detection.config import config_from_dict
from detection.engine.checkpoint import save_checkpoint
from detection.inference.detections import to_detections
from detection.inference.predictor import Predictor
from detection.models import Detector, build_detector, list_detectors

SIZE = 64
CATEGORIES = [{"id": 1, "name": "circle"}, {"id": 2, "name": "square"}, {"id": 7, "name": "triangle"}]
MAX_DETECTIONS = 25


# heads that are options of a family, checked like a family of their own: "family/variant" -> model.<family>
VARIANTS = {"yolo/free": {"head": "free"}, "yolo/end2end": {"head": "free", "end2end": True, "reg_max": 1}}


def family_config(name: str):
    """The family's default options (or a VARIANTS entry's) on the tiny backbone, keeping every candidate."""
    family = name.split("/")[0]
    return config_from_dict({
        "data": {"input_size": SIZE},
        "model": {"name": family, "backbone": "tiny", "neck_channels": 32, family: VARIANTS.get(name, {}),
                  "postprocess": {"score_threshold": 0.0, "max_detections": MAX_DETECTIONS}},
    })


def batch(seed: int = 0):
    """Three images with bright boxes on a dark background; the last image has no object."""
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(3, 3, SIZE, SIZE, generator=g) * 0.2
    boxes = [torch.tensor([[4.0, 6.0, 30.0, 28.0], [36.0, 30.0, 60.0, 62.0]]),
             torch.tensor([[10.0, 10.0, 50.0, 40.0]]), torch.zeros(0, 4)]
    labels = [torch.tensor([1, 3]), torch.tensor([2]), torch.zeros(0, dtype=torch.int64)]
    for i, image_boxes in enumerate(boxes):
        for x1, y1, x2, y2 in image_boxes.int().tolist():
            images[i, :, y1:y2, x1:x2] = 0.9
    return images, [{"boxes": b, "labels": l} for b, l in zip(boxes, labels)]


def proposals_for(model: Detector, images: torch.Tensor):
    """External proposals for families that take them: a grid of boxes per image."""
    if not model.takes_proposals:
        return None
    step = SIZE // 4
    grid = [[x, y, x + 2 * step, y + 2 * step] for x in range(0, SIZE - step, step) for y in range(0, SIZE - step, step)]
    return [torch.tensor(grid, dtype=torch.float32) for _ in range(len(images))]


def run(model: Detector, images: torch.Tensor, targets=None):
    return model(images, targets, proposals_for(model, images))


def run_with(model: Detector, images: torch.Tensor, **call):
    """Eval mode with a call's post-processing values (score_threshold, max_detections)."""
    return model(images, None, proposals_for(model, images), **call)


@pytest.fixture(scope="module", params=list_detectors() + list(VARIANTS))
def trained(request):
    """(config, model) after a few SGD steps, so eval mode gives real detections."""
    torch.manual_seed(0)
    cfg = family_config(request.param)
    model = build_detector(cfg.model, num_classes=len(CATEGORIES), input_size=SIZE)
    images, targets = batch()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.005, momentum=0.9)
    model.train()
    for _ in range(3):
        loss = sum(run(model, images, targets).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    if request.param in VARIANTS:  # the free head starts at a class prior (every score 0.004) that 3 steps keep
        with torch.no_grad():
            for branch in [model.head, model.one_to_one or model.head]:
                for conv in branch.cls:
                    conv[-1].bias.normal_(-2.0, 1.0, generator=torch.Generator().manual_seed(0))
    return cfg, model.eval()


def test_is_a_detector_with_its_sizes(trained):
    cfg, model = trained
    assert isinstance(model, Detector)
    assert model.num_classes == len(CATEGORIES) and model.input_size == SIZE


@pytest.mark.parametrize("empty", [False, True], ids=["boxes", "no_boxes"])
def test_train_mode_gives_finite_scalar_losses_and_gradients(trained, empty):
    _, model = trained
    images, targets = batch(seed=1)
    if empty:
        targets = [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)} for _ in targets]
    model.train()
    try:
        losses = run(model, images, targets)
        assert isinstance(losses, dict) and losses
        for name, value in losses.items():
            assert isinstance(value, torch.Tensor) and value.dim() == 0 and torch.isfinite(value), (name, value)
        model.zero_grad(set_to_none=True)
        sum(losses.values()).backward()
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads)
    finally:
        model.eval()


def test_eval_output_format_and_label_range(trained):
    _, model = trained
    images, _ = batch()
    with torch.no_grad():
        outputs = run(model, images)
    assert isinstance(outputs, list) and len(outputs) == len(images)
    assert sum(len(out["boxes"]) for out in outputs) > 0, "the test needs detections to check"
    for out in outputs:
        assert set(out) == {"boxes", "scores", "labels"}
        n = len(out["scores"])
        assert out["boxes"].shape == (n, 4) and out["labels"].shape == (n,) and n <= MAX_DETECTIONS
        assert out["boxes"].dtype.is_floating_point and out["labels"].dtype == torch.int64
        if n:
            assert out["labels"].min() >= 1 and out["labels"].max() <= len(CATEGORIES)  # 0 never emitted
            assert (out["scores"] >= 0).all() and (out["scores"] <= 1).all()
            assert (out["scores"][:-1] >= out["scores"][1:]).all(), "best score first"
            boxes = out["boxes"]
            assert torch.isfinite(boxes).all() and boxes.min() >= 0 and boxes.max() <= SIZE
            assert (boxes[:, 2] >= boxes[:, 0]).all() and (boxes[:, 3] >= boxes[:, 1]).all()


def test_batched_equals_one_by_one(trained):
    _, model = trained
    images, _ = batch()
    with torch.no_grad():
        together = run(model, images)
        alone = [run(model, images[i:i + 1])[0] for i in range(len(images))]
    for a, b in zip(alone, together):
        assert a["boxes"].shape == b["boxes"].shape
        assert torch.equal(a["labels"], b["labels"])
        torch.testing.assert_close(a["boxes"], b["boxes"], atol=1e-3, rtol=0)
        torch.testing.assert_close(a["scores"], b["scores"], atol=1e-4, rtol=0)


def test_round_trip_through_checkpoint_and_predictor(trained, tmp_path):
    cfg, model = trained
    path = tmp_path / "model.pt"
    save_checkpoint(path, {"config": cfg.to_dict(), "model": model.state_dict(), "categories": CATEGORIES})
    predictor = Predictor.from_checkpoint(path, device="cpu")
    images, _ = batch()
    pixels = [np.ascontiguousarray((img.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)) for img in images]
    answers = predictor.predict(pixels, score_threshold=0.0, max_detections=MAX_DETECTIONS)
    exact = torch.stack([torch.from_numpy(p).permute(2, 0, 1).float() / 255 for p in pixels])
    with torch.no_grad():
        outputs = model(exact)  # as the predictor calls it: families that take proposals make their own
    for answer, output in zip(answers, outputs):
        expected = to_detections(output, 1.0, (SIZE, SIZE), CATEGORIES, 0.0, MAX_DETECTIONS)
        assert len(answer) == len(expected)
        for got in answer:  # the predictor's model has BatchNorm folded: near-equal scores may swap places
            same = [want for want in expected if want["category_id"] == got["category_id"]
                    and got["category"] == want["category"] and abs(got["score"] - want["score"]) <= 1e-4
                    and got["bbox"] == pytest.approx(want["bbox"], abs=1e-2)]
            assert same, got
            expected.remove(same[0])


def own_postprocess_checkpoint(cfg, model, path, score_threshold: float, max_detections: int):
    """The trained model saved with its own (the checkpoint's) model.postprocess set to these values."""
    record = cfg.to_dict()
    record["model"]["postprocess"].update(score_threshold=score_threshold, max_detections=max_detections)
    save_checkpoint(path, {"config": record, "model": model.state_dict(), "categories": CATEGORIES})
    return Predictor.from_checkpoint(path, device="cpu")


def test_a_call_goes_below_and_above_the_checkpoints_postprocessing(trained, tmp_path):
    """The call's score_threshold and max_detections are the post-processing's: a call below the checkpoint's
    threshold gets the lower-scoring boxes, one above its max detections gets more than that max."""
    cfg, model = trained
    images, _ = batch()
    with torch.no_grad():
        every = run_with(model, images, score_threshold=0.0, max_detections=1000)
    scores = torch.cat([out["scores"] for out in every]).sort().values
    assert len(scores) > 6 and scores[-1] - scores[0] > 1e-3, "the test needs detections of other scores to cut"
    own = float(scores[0] + scores[-1]) / 2  # the checkpoint's own threshold, between its worst and best
    predictor = own_postprocess_checkpoint(cfg, model, tmp_path / "model.pt", own, max_detections=2)
    pixels = [np.ascontiguousarray((img.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)) for img in images]
    default = predictor.predict(pixels)  # a call with no values: the checkpoint's
    assert all(len(dets) <= 2 and all(d["score"] >= own - 1e-5 for d in dets) for dets in default)  # 5 decimals
    lower = predictor.predict(pixels, score_threshold=0.0, max_detections=1000)
    found = [d["score"] for dets in lower for d in dets]
    assert max(len(dets) for dets in lower) > 2, "max_detections above the checkpoint's gives more"
    assert min(found) < own - 1e-5 and len(found) > sum(len(dets) for dets in default)


@pytest.mark.parametrize("low", [0.0, 0.02])
def test_a_low_call_cut_afterwards_equals_the_higher_call(trained, low):
    """What the service relies on to batch requests of other thresholds together: run at the lowest threshold and
    the most detections, then cut each to its own, and each gets what it would alone."""
    _, model = trained
    images, _ = batch(seed=2)
    with torch.no_grad():
        wide = run_with(model, images, score_threshold=low, max_detections=500)
        scores = torch.cat([out["scores"] for out in wide])
        high = float(scores.median()) if len(scores) else 0.5
        narrow = run_with(model, images, score_threshold=high, max_detections=3)
    for w, n in zip(wide, narrow):
        keep = w["scores"] >= high
        assert torch.equal(w["labels"][keep][:3], n["labels"])
        torch.testing.assert_close(w["boxes"][keep][:3], n["boxes"], atol=1e-4, rtol=0)
        torch.testing.assert_close(w["scores"][keep][:3], n["scores"], atol=1e-5, rtol=0)


def test_call_values_out_of_range_are_user_errors(trained):
    from datasets.core.errors import UserError

    _, model = trained
    images, _ = batch()
    with pytest.raises(UserError, match="score_threshold must be within 0..1"):
        run_with(model, images, score_threshold=1.5)
    with pytest.raises(UserError, match="max_detections must be at least 1"):
        run_with(model, images, max_detections=0)
