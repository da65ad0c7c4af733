"""The single-shot pieces: anchors, box coding, matching, YOLO's target assignment, SSD and YOLO specifics.

Hand-computed cases where a formula is involved; the contract test covers outputs, batching and checkpoints.
"""
from __future__ import annotations

import math

import pytest
import torch

from datasets.core.errors import UserError
from detection.config import config_from_dict
from detection.models import build_detector
from detection.models.anchors import grid_anchors, ssd_box_sizes
from detection.models.box_coder import decode, encode
from detection.models.matching import BACKGROUND, match_anchors
from detection.models.yolo_targets import assign_targets


def test_grid_anchors_hand_computed():
    (level,) = grid_anchors([[(8.0, 4.0), (2.0, 2.0)]], [4], [(2, 3)])
    assert level.shape == (2 * 3 * 2, 4)
    # order: row, column, anchor; cell (row 0, col 1) is centred at (6, 2)
    assert level[2].tolist() == [2.0, 0.0, 10.0, 4.0] and level[3].tolist() == [5.0, 1.0, 7.0, 3.0]
    # cell (row 1, col 2): centre (10, 6)
    assert level[-2].tolist() == [6.0, 4.0, 14.0, 8.0]


def test_ssd_box_sizes_follow_the_paper():
    sizes = ssd_box_sizes(3, 300, 0.2, 0.9, [2.0])
    scales = [0.2, 0.55, 0.9]
    assert [len(level) for level in sizes] == [4, 4, 4]
    for k, level in enumerate(sizes):
        s = scales[k] * 300
        following = (scales[k + 1] if k + 1 < 3 else 1.0) * 300
        assert level[0] == pytest.approx((s, s))
        assert level[1] == pytest.approx((math.sqrt(s * following),) * 2)
        assert level[2] == pytest.approx((s * math.sqrt(2), s / math.sqrt(2)))
        assert level[3] == pytest.approx((s / math.sqrt(2), s * math.sqrt(2)))


def test_encode_then_decode_is_the_identity():
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(50, 2, generator=g) * 100
    anchors = torch.cat([xy, xy + 5 + torch.rand(50, 2, generator=g) * 60], 1)
    xy = torch.rand(50, 2, generator=g) * 100
    boxes = torch.cat([xy, xy + 1 + torch.rand(50, 2, generator=g) * 80], 1)
    deltas = encode(boxes, anchors)
    torch.testing.assert_close(decode(deltas, anchors), boxes, atol=1e-3, rtol=0)
    assert encode(anchors, anchors).abs().max() < 1e-6  # an anchor encodes to zero against itself


def test_matching_gives_every_box_an_anchor_even_a_tiny_one():
    (anchors,) = grid_anchors([[(16.0, 16.0)]], [16], [(4, 4)])
    boxes = torch.tensor([[2.0, 2.0, 17.0, 17.0],   # about an anchor: IoU > 0.5
                          [40.0, 40.0, 42.0, 42.0],  # 2 px: IoU < 0.02 with everything
                          [33.0, 1.0, 63.0, 15.0]])  # between anchors
    matched = match_anchors(anchors, boxes, 0.5)
    assert set(matched[matched != BACKGROUND].tolist()) == {0, 1, 2}
    assert matched[0] == 0  # the anchor at (8, 8) has IoU 0.77 with box 0
    assert (match_anchors(anchors, torch.zeros(0, 4), 0.5) == BACKGROUND).all()


def test_yolo_assignment_takes_the_centre_cell_and_two_neighbours():
    anchors = torch.tensor([[[10.0, 10.0], [20.0, 20.0], [40.0, 40.0]]])  # one level, stride 8
    targets = [{"boxes": torch.tensor([[10.0, 18.0, 30.0, 38.0]]), "labels": torch.tensor([2])}]
    found = assign_targets(targets, anchors, 0, 8, (8, 8), 4.0)
    # a 20 px box fits all three anchors (ratio 2, 1, 2); its centre (20, 28) is cell (row 3, col 2) at
    # fraction (0.5, 0.5): neighbours to the right and below
    assert found.count == 9
    assert sorted(set(zip(found.row.tolist(), found.col.tolist()))) == [(3, 2), (3, 3), (4, 2)]
    assert (found.labels == 2).all() and (found.image == 0).all()


def test_yolo_assignment_gives_a_tiny_box_its_best_anchor():
    anchors = torch.tensor([[[16.0, 16.0]], [[64.0, 64.0]]])  # two levels, one anchor each
    targets = [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)},
               {"boxes": torch.tensor([[5.0, 5.0, 6.0, 6.0]]), "labels": torch.tensor([1])}]  # 1 px: ratio 16
    fine = assign_targets(targets, anchors, 0, 8, (8, 8), 4.0)
    coarse = assign_targets(targets, anchors, 1, 32, (2, 2), 4.0)
    assert fine.count >= 1 and coarse.count == 0  # its best anchor (16 px) takes it, the 64 px one does not
    assert (fine.image == 1).all() and fine.row[0] == 0 and fine.col[0] == 0


def yolo_config(**model):
    return config_from_dict({"data": {"input_size": 64},
                             "model": {"name": "yolo", "backbone": "tiny", "neck_channels": 16, **model}})


def test_yolo_anchors_not_matching_the_neck_levels_name_the_key():
    cfg = yolo_config(yolo={"anchors": [[8, 8, 16, 16], [32, 32, 64, 64]]})  # 2 levels, PAN gives 3
    with pytest.raises(UserError, match=r"model.yolo.anchors: 2 levels .* 3 maps"):
        build_detector(cfg.model, num_classes=2, input_size=64)


@pytest.mark.parametrize("bad", ["[[8, 8, 16]]", "[[8, -8]]"])
def test_yolo_anchor_values_are_checked(bad):
    from tiny_run import DEMO
    from detection.config import load_config

    with pytest.raises(UserError, match=r"model.yolo.anchors\[0\]"):
        load_config(DEMO, ["model.name=yolo", "model.faster_rcnn=null", f"model.yolo.anchors={bad}"])


def test_ssd_extra_levels_and_no_box_images():
    cfg = config_from_dict({"data": {"input_size": 64}, "model": {
        "name": "ssd", "backbone": "tiny", "features": ["c4", "c5"], "neck_channels": 32, "neck_levels": 4}})
    model = build_detector(cfg.model, num_classes=3, input_size=64).train()
    assert [s.stride for s in model.body.output_shape().values()] == [16, 32, 64, 128]
    empty = [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}] * 2
    losses = model(torch.rand(2, 3, 64, 64), empty)
    assert losses["loss_box_reg"] == 0 and losses["loss_classifier"] > 0  # background is still learned


def test_ssd_candidates_per_class_keep_each_class_best_boxes():
    """top_k_per_class (torchvision's topk_candidates): each class keeps its own best k boxes, the rest score 0."""
    from detection.models.ssd import best_per_class

    scores = torch.tensor([[[0.9, 0.1], [0.8, 0.2], [0.1, 0.7], [0.5, 0.6]]])  # [1 image, 4 boxes, 2 classes]
    assert torch.equal(best_per_class(scores, 2), torch.tensor([[[0.9, 0.0], [0.8, 0.0], [0.0, 0.7], [0.0, 0.6]]]))
    assert torch.equal(best_per_class(scores, 9), scores)  # k above the boxes: all


def test_ssd_default_boxes_per_level_scales_and_clip():
    """Per-level ratios and given scales (torchvision's SSD300 starts at 0.07 with ratio 2), sides clipped."""
    sizes = ssd_box_sizes(2, 300, 0.2, 0.9, [[2.0], [2.0, 3.0]], scales=[0.07, 0.9, 1.2], clip=True)
    assert [len(level) for level in sizes] == [4, 6]
    assert sizes[0][0] == pytest.approx((21.0, 21.0))
    assert sizes[0][1] == pytest.approx((math.sqrt(0.07 * 0.9) * 300,) * 2)
    assert sizes[1][1] == pytest.approx((300.0, 300.0))  # sqrt(0.9 * 1.2) > 1: the input's side
    assert sizes[1][2] == pytest.approx((300.0, 0.9 / math.sqrt(2) * 300))  # 0.9 * sqrt(2) > 1


@pytest.mark.parametrize("ssd, match", [({"default_boxes": "torchvision"}, "fixed_size"),
                                        ({"steps": [8, 16]}, "steps"),
                                        ({"image_mean": [0.5]}, "image_mean"),
                                        ({"default_boxes": "anchors"}, "default_boxes")])
def test_ssd_torchvision_options_are_checked(ssd, match):
    with pytest.raises(UserError, match=match):
        config_from_dict({"model": {"name": "ssd", "backbone": "tiny", "ssd": ssd}})


def test_ssd_counts_per_level_must_fit_the_maps():
    cfg = config_from_dict({"data": {"input_size": 64}, "model": {
        "name": "ssd", "backbone": "tiny", "neck_channels": 16, "ssd": {"level_aspect_ratios": [[2.0]] * 3}}})
    with pytest.raises(UserError, match=r"level_aspect_ratios: 3 lists for 4 feature maps"):
        build_detector(cfg.model, num_classes=2, input_size=64)
