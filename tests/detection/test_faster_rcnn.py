"""Faster R-CNN from the registry on the tiny backbone: losses, backward, empty targets, eval outputs,
batched equals single."""
from __future__ import annotations

import pytest
import torch

from datasets.core.errors import UserError
from detection.config import ModelConfig, PostprocessConfig
from detection.models import build_detector
from detection.models.faster_rcnn import FasterRCNNOptions

SIZE = 64
NUM_CLASSES = 3
LOSS_NAMES = {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"}


def model_cfg(fpn: bool) -> ModelConfig:
    opts = FasterRCNNOptions(anchor_sizes=[8, 16, 32, 64] if fpn else [16, 32], aspect_ratios=[0.5, 1.0, 2.0],
                             rpn_pre_nms_top_n_train=200, rpn_post_nms_top_n_train=100,
                             rpn_pre_nms_top_n_test=100, rpn_post_nms_top_n_test=50,
                             rpn_batch_size_per_image=64, box_batch_size_per_image=32, representation_size=64)
    return ModelConfig(name="faster_rcnn", backbone="tiny", features=["c3", "c4", "c5"] if fpn else ["c4"],
                       neck="fpn" if fpn else "none", neck_channels=32, options=opts,
                       postprocess=PostprocessConfig(max_detections=20))


def build(fpn: bool, seed: int = 0):
    torch.manual_seed(seed)
    return build_detector(model_cfg(fpn), num_classes=NUM_CLASSES, input_size=SIZE)


def batch(seed: int = 0):
    """Two images with bright boxes on a dark background, and their targets."""
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(2, 3, SIZE, SIZE, generator=g) * 0.2
    boxes = [torch.tensor([[4.0, 6.0, 30.0, 28.0], [36.0, 30.0, 60.0, 62.0]]), torch.tensor([[10.0, 10.0, 50.0, 40.0]])]
    labels = [torch.tensor([1, 3]), torch.tensor([2])]
    for i, image_boxes in enumerate(boxes):
        for x1, y1, x2, y2 in image_boxes.int().tolist():
            images[i, :, y1:y2, x1:x2] = 0.9
    return images, [{"boxes": b, "labels": l} for b, l in zip(boxes, labels)]


@pytest.fixture(scope="module", params=[True, False], ids=["fpn", "no_fpn"])
def detector(request):
    return build(request.param)


def test_train_losses_finite_and_backward(detector):
    detector.train()
    images, targets = batch()
    losses = detector(images, targets)
    assert set(losses) == LOSS_NAMES
    for name, value in losses.items():
        assert value.dim() == 0 and torch.isfinite(value), (name, value)
    total = sum(losses.values())
    assert total > 0
    detector.zero_grad(set_to_none=True)
    total.backward()
    no_grad = [n for n, p in detector.named_parameters() if p.requires_grad and p.grad is None]
    # only the stages after the last used map (c5 when features=[c4]) may get no gradient
    assert all(".stages.c5." in n for n in no_grad), no_grad[:5]
    assert all(torch.isfinite(p.grad).all() for p in detector.parameters() if p.grad is not None)
    # the backbone is trained end to end through the heads
    assert any(p.grad.abs().sum() > 0 for p in detector.model.backbone.body.parameters())


def test_empty_ground_truth_gives_finite_loss(detector):
    detector.train()
    images, targets = batch()
    targets[1] = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}
    losses = detector(images, targets)
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    # a batch where no image has an object
    empty = [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}] * 2
    losses = detector(images, empty)
    assert all(torch.isfinite(v) for v in losses.values())
    assert losses["loss_box_reg"] == 0 and losses["loss_rpn_box_reg"] == 0  # nothing to regress to
    assert losses["loss_objectness"] > 0 and losses["loss_classifier"] > 0  # background is still learned
    sum(losses.values()).backward()


def test_eval_output_shapes(detector):
    detector.eval()
    images, _ = batch()
    with torch.no_grad():
        outputs = detector(images)
    assert isinstance(outputs, list) and len(outputs) == 2
    for out in outputs:
        n = out["boxes"].shape[0]
        assert out["boxes"].shape == (n, 4) and out["scores"].shape == (n,) and out["labels"].shape == (n,)
        assert n <= 20  # model.postprocess.max_detections
        assert out["labels"].dtype == torch.int64
        if n:
            assert out["labels"].min() >= 1 and out["labels"].max() <= NUM_CLASSES  # 0 is background
            assert (out["scores"] >= 0.05).all() and (out["scores"] <= 1).all()  # postprocess.score_threshold
            b = out["boxes"]
            assert (b[:, 2] >= b[:, 0]).all() and (b[:, 3] >= b[:, 1]).all()
            assert b.min() >= 0 and b.max() <= SIZE  # clipped to the input frame
            assert torch.isfinite(b).all()


def trained_a_little(fpn: bool):
    """A few SGD steps so that eval mode gives a real, non-trivial set of detections."""
    model = build(fpn, seed=1)
    model.train()
    images, targets = batch()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    for _ in range(3):
        loss = sum(model(images, targets).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval(), images


@pytest.mark.parametrize("fpn", [True, False], ids=["fpn", "no_fpn"])
def test_batched_equals_single(fpn):
    model, images = trained_a_little(fpn)
    with torch.no_grad():
        alone = model(images[:1])[0]
        together = model(images)[0]
        swapped = model(images.flip(0))[1]
    assert alone["boxes"].shape[0] > 0, "the test needs detections to compare"
    for other in (together, swapped):
        assert other["boxes"].shape == alone["boxes"].shape
        assert torch.equal(other["labels"], alone["labels"])
        torch.testing.assert_close(other["boxes"], alone["boxes"], atol=1e-4, rtol=0)
        torch.testing.assert_close(other["scores"], alone["scores"], atol=1e-4, rtol=0)


def test_eval_is_deterministic():
    model, images = trained_a_little(True)
    with torch.no_grad():
        a, b = model(images), model(images)
    for x, y in zip(a, b):
        assert torch.equal(x["boxes"], y["boxes"]) and torch.equal(x["scores"], y["scores"])


def test_anchor_sizes_must_match_levels():
    cfg = model_cfg(True)
    cfg.options.anchor_sizes = [8, 16]
    with pytest.raises(UserError, match="anchor_sizes"):
        build_detector(cfg, num_classes=NUM_CLASSES, input_size=SIZE)


def test_classes_set_predictor_width():
    model = build_detector(model_cfg(True), num_classes=7, input_size=SIZE)
    predictor = model.model.roi_heads.box_predictor
    assert predictor.cls_score.out_features == 8  # 7 classes + background
    assert predictor.bbox_pred.out_features == 8 * 4


def test_maps_of_unequal_channels_without_a_neck_are_a_clear_error():
    """Defect 1: neck none with several maps built, then crashed at the first forward (heads read the last map)."""
    cfg = model_cfg(False)
    cfg.features = ["c4", "c5"]  # tiny: 96 and 128 channels
    cfg.options.anchor_sizes = [16, 32]
    with pytest.raises(UserError, match=r"equal channels.*c4: 96, c5: 128.*model.neck=fpn"):
        build_detector(cfg, num_classes=NUM_CLASSES, input_size=SIZE)


def test_one_map_without_a_neck_trains_on_any_map():
    cfg = model_cfg(False)
    cfg.features = ["c3"]
    model = build_detector(cfg, num_classes=NUM_CLASSES, input_size=SIZE).train()
    images, targets = batch()
    assert all(torch.isfinite(v) for v in model(images, targets).values())


def test_class_agnostic_nms_removes_overlaps_across_classes():
    model, images = trained_a_little(True)
    model.postprocess_options = PostprocessConfig(score_threshold=0.0, nms_iou=0.3, max_detections=100,
                                                  class_agnostic=True)
    with torch.no_grad():
        out = model(images)[0]
    from torchvision.ops import box_iou

    iou = box_iou(out["boxes"], out["boxes"]).fill_diagonal_(0)
    assert out["boxes"].shape[0] > 1 and iou.max() <= 0.3 + 1e-6
    model.postprocess_options = PostprocessConfig(score_threshold=0.0, nms_iou=0.3, max_detections=100)
    with torch.no_grad():
        per_class = model(images)[0]
    assert per_class["boxes"].shape[0] >= out["boxes"].shape[0]
    same = per_class["labels"][:, None] == per_class["labels"][None, :]
    assert (box_iou(per_class["boxes"], per_class["boxes"]).fill_diagonal_(0)[same] <= 0.3 + 1e-6).all()
