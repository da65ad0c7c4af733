"""SiamFC parts: cross-correlation and the response geometry, centre labels and the balanced loss, the pair
sampler's crops, the tracker on a synthetic moving square, and the config's checks."""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest
import torch

from datasets.core.errors import UserError
from datasets.synthetic.sequences import make_sequences
from datasets.synthetic.shapes import make_shapes
from detection.backbones import build_backbone
from detection.config import config_from_dict
from detection.registry import TRACKERS
from detection.tracking.crops import box_in_crop, context_side, crop_square
from detection.tracking.metrics import sot_metrics
from detection.tracking.pairs import PairDataset, coco_clips, collate_pairs, sequence_clips
from detection.tracking.siamfc import SiamFCTracker, check_box
from detection.tracking.siamfc_net import (SiamFCNet, build_siamfc_net, cell_offsets, centre_labels,
                                           cross_correlation, logistic_loss)
from detection.tracking.siamfc_options import PairOptions, SiamFCOptions, TrackingOptions


def siamfc_config(**model: object):
    return config_from_dict({"model": {"name": "siamfc", "backbone": "siamfc_tiny", **model}})


def test_cross_correlation_peaks_at_the_planted_offset_of_each_pair():
    """Three search maps of faint noise, each with its own exemplar planted at a known offset: one grouped conv
    finds each (no pair sees another's exemplar)."""
    gen = torch.Generator().manual_seed(0)
    offsets = [(0, 0), (3, 9), (11, 4)]
    search = 0.05 * torch.randn(3, 8, 20, 20, generator=gen)
    kernels = torch.randn(3, 8, 6, 6, generator=gen)
    for i, (row, col) in enumerate(offsets):
        search[i, :, row:row + 6, col:col + 6] = kernels[i]
    response = cross_correlation(kernels, search)
    assert response.shape == (3, 1, 15, 15)
    peaks = [divmod(int(r.argmax()), 15) for r in response[:, 0]]
    assert peaks == offsets
    shared = cross_correlation(kernels[1:2], search)  # one kernel for every map (the tracker's scales)
    assert divmod(int(shared[1, 0].argmax()), 15) == offsets[1]


@pytest.mark.parametrize("backbone", ["siamfc_tiny", "siamfc_alexnet"])
def test_network_response_peaks_at_the_cell_of_a_planted_exemplar(backbone):
    """An exemplar crop pasted into a plain search crop, 16 px right and 24 px up of the centre: the untrained
    network (unpadded, so exactly translation-equivariant) answers at the cell of that shift."""
    torch.manual_seed(0)
    net = build_siamfc_net(siamfc_config(backbone=backbone).model).eval()
    pattern = torch.rand(1, 3, 127, 127)
    search = torch.full((1, 3, 255, 255), 0.5)
    dx, dy = 16, -24
    top, left = 64 + dy, 64 + dx
    search[:, :, top:top + 127, left:left + 127] = pattern
    with torch.no_grad():
        response = net(pattern, search)[0, 0]
    size = net.response_size
    assert size == 17 and net.stride == 8
    row, col = divmod(int(response.argmax()), size)
    offsets = cell_offsets(size, net.stride)
    assert (offsets[col].item(), offsets[row].item()) == (dx, dy)


def test_centre_labels_and_balanced_loss():
    boxes = torch.tensor([[117.0, 117.0, 137.0, 137.0], [149.0, 117.0, 169.0, 137.0], [0.0, 0.0, 9.0, 9.0]])
    labels = centre_labels(boxes, torch.tensor([True, True, False]), 17, 8, 255, radius=16)
    assert labels.shape == (3, 1, 17, 17)
    assert labels[0, 0, 8, 8] == 1 and labels[0].sum() == 13  # cells within 2 of the centre: a diamond of 13
    assert labels[1, 0, 8, 12] == 1 and labels[1, 0, 8, 8] == 0  # 32 px right: 4 cells right
    assert labels[2].sum() == 0  # a negative pair
    perfect = torch.where(labels > 0, 20.0, -20.0)
    assert logistic_loss(perfect, labels) < 1e-6
    flat = logistic_loss(torch.zeros_like(labels), labels)
    assert flat.item() == pytest.approx(np.log(2), rel=1e-5)  # weights sum to one: half positives, half negatives
    negatives = torch.zeros(2, 1, 17, 17)
    assert logistic_loss(torch.zeros_like(negatives), negatives).item() == pytest.approx(np.log(2), rel=1e-5)


def test_network_trains_one_step_and_every_weight_gets_a_gradient():
    torch.manual_seed(0)
    net = build_siamfc_net(siamfc_config(siamfc={"adjust": 32}).model).train()
    targets = [{"box": torch.tensor([110.0, 100.0, 150.0, 140.0]), "positive": torch.tensor(True)},
               {"box": torch.tensor([0.0, 0.0, 10.0, 10.0]), "positive": torch.tensor(False)}]
    losses = net(torch.rand(2, 3, 127, 127), torch.rand(2, 3, 255, 255), targets)
    assert set(losses) == {"loss_cls"} and torch.isfinite(losses["loss_cls"])
    losses["loss_cls"].backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    root = tmp_path_factory.mktemp("pairs")
    return make_shapes(root, 6, seed=2), root / "images"


def region(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    """The box's pixels resized to 16x16 (float), to compare the same object cut at two scales."""
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    return cv2.resize(image[y1:y2, x1:x2], (16, 16), interpolation=cv2.INTER_AREA).astype(np.float32)


def test_pair_crops_contain_the_object(shapes):
    """Without colour or blur, the object's pixels in the source image reappear in both crops where the pair says
    it is: the exemplar's centre box and the search crop's shifted, scaled box (a positive pair)."""
    annotations, images = shapes
    clips, categories = coco_clips(annotations, images)
    options = SiamFCOptions(pairs=PairOptions(color=0, blur=0, gray=0, negative=0))
    pairs = PairDataset(clips, options, categories, seed=1)
    for index in range(len(pairs)):
        exemplar, search, target = pairs[index]
        clip, frame = pairs.entries[index]
        box = clips[clip].boxes[frame]
        source = cv2.cvtColor(cv2.imread(str(clips[clip].frames[frame])), cv2.COLOR_BGR2RGB)
        side = context_side(*(box[2:] - box[:2]))
        in_exemplar = box_in_crop(box, (box[:2] + box[2:]) / 2, side, 127)
        in_search = target["box"].numpy()
        assert target["positive"]
        assert np.abs((in_search[:2] + in_search[2:]) / 2 - 127).max() <= 32 + 0.5  # max_shift
        assert (in_search[:2] >= 0).all() and (in_search[2:] <= 255).all()
        for crop, where in ((exemplar, in_exemplar), (search, in_search)):
            pixels = (crop.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            assert np.abs(region(pixels, where) - region(source, box)).mean() < 12, index


def test_sequence_pairs_take_two_frames_of_one_target_within_the_gap(shapes, tmp_path):
    annotations, images = shapes
    make_sequences(annotations, images, tmp_path / "seqs", 2, seed=1, frames=12, objects=2, size=128)
    clips = sequence_clips(tmp_path / "seqs")
    assert [len(c.frames) for c in clips] == [12, 12] and all(c.category == -1 for c in clips)
    options = SiamFCOptions(pairs=PairOptions(color=0, blur=0, gray=0, negative=0, sequence_gap=3))
    pairs = PairDataset(clips, options, [], seed=0)
    assert len(pairs) == 24
    for index in range(len(pairs)):
        clip, frame = pairs.entries[index]
        other, search_frame, positive = pairs.search_of(clip, frame)
        assert positive and other == clip and abs(search_frame - frame) <= 3
    _, search, target = pairs[5]
    assert target["positive"] and (target["box"][:2] >= 0).all() and (target["box"][2:] <= 255).all()


def test_negative_pairs_show_another_object_and_distractors_share_the_class(shapes):
    annotations, images = shapes
    clips, categories = coco_clips(annotations, images)
    pairs = PairDataset(clips, SiamFCOptions(pairs=PairOptions(negative=1.0, distractor=1.0)), categories, seed=0)
    for index in range(10):
        clip, frame = pairs.entries[index]
        other, _, positive = pairs.search_of(clip, frame)
        assert not positive and other != clip
        if pairs.by_category[clips[clip].category] != [clip]:  # a twin exists: the distractor is one
            assert clips[other].category == clips[clip].category
    (exemplars, searches), targets = collate_pairs([pairs[i] for i in range(3)])
    assert exemplars.shape == (3, 3, 127, 127) and searches.shape == (3, 3, 255, 255)
    assert not any(bool(t["positive"]) for t in targets)


def moving_square(frames: int = 40, size: int = 160) -> tuple[list[np.ndarray], np.ndarray]:
    """Frames (RGB) of a textured grey background with a red square gliding along a curve and slowly growing,
    and its boxes [T, 4] xywh."""
    rng = np.random.default_rng(0)
    background = cv2.GaussianBlur(rng.integers(60, 200, (size, size, 3)).astype(np.uint8), (0, 0), 3)
    images, boxes = [], []
    for t in range(frames):
        side = 24 + 10 * t / frames
        cx, cy = 40 + 2.0 * t, 80 + 30 * np.sin(t / 8)
        image = background.copy()
        x1, y1 = int(round(cx - side / 2)), int(round(cy - side / 2))
        x2, y2 = int(round(cx + side / 2)), int(round(cy + side / 2))
        image[y1:y2, x1:x2] = (220, 30, 30)
        images.append(image)
        boxes.append([x1, y1, x2 - x1, y2 - y1])
    return images, np.array(boxes, dtype=np.float64)


def test_tracker_follows_a_moving_square():
    """The untrained tiny network already tells a red square from a grey texture: this checks the tracking
    mechanics (crops, scale pyramid, window, upsampling, displacement back to the frame) with AUC > 0.6."""
    torch.manual_seed(0)
    family = TRACKERS.get("siamfc")
    options = SiamFCOptions()
    tracker = family(build_siamfc_net(siamfc_config().model), options)
    assert isinstance(tracker, SiamFCTracker)
    images, gt = moving_square()
    start = gt[0].copy()
    tracker.init(images[0], np.concatenate([start[:2], start[:2] + start[2:]]))
    results = [start]
    for image in images[1:]:
        box, score = tracker.update(image)
        assert box.shape == (4,) and 0 <= score <= 1
        results.append(np.concatenate([box[:2], box[2:] - box[:2]]))
    metrics = sot_metrics(gt, np.array(results))
    assert metrics["success_auc"] > 0.6 and metrics["precision_20"] > 0.95, metrics


@pytest.mark.parametrize("box, fragment", [
    ([10, 10, 10, 30], "zero size"), ([-5, 0, 20, 20], "not inside"), ([0, 0, 200, 20], "not inside"),
    ([0, 0, np.nan, 5], "finite")])
def test_start_box_checks(box, fragment):
    with pytest.raises(UserError, match=fragment):
        check_box(np.array(box, dtype=float), 100, 150)


@pytest.mark.parametrize("overrides, fragment", [
    ({"siamfc": {"tracking": {"scales": 2}}}, "model.siamfc.tracking.scales"),
    ({"siamfc": {"pairs": {"negative": 1.5}}}, "model.siamfc.pairs.negative"),
    ({"siamfc": {"exemplar_size": 255}}, "model.siamfc.exemplar_size"),
    ({"faster_rcnn": {"anchor_sizes": [8]}}, "model.faster_rcnn"),
    ({"siamfc": {"bogus": 1}}, "model.siamfc.bogus"),
])
def test_config_checks_name_the_key(overrides, fragment):
    with pytest.raises(UserError, match=fragment.replace(".", r"\.")):
        siamfc_config(**overrides)


@pytest.mark.parametrize("model, fragment", [
    ({"siamfc": {"search_size": 251}}, "multiple of the map's stride"),
    ({"features": ["c9"]}, "model.features"),
    ({"neck": "fpn"}, "model.neck"),
    ({"siamfc": {"exemplar_size": 31, "search_size": 63}}, "no response"),
])
def test_network_build_checks_name_the_key(model, fragment):
    with pytest.raises(UserError, match=fragment):
        build_siamfc_net(siamfc_config(**model).model)


def test_other_backbones_are_selectable_and_the_stride_8_map_is_the_default():
    cfg = siamfc_config(backbone="tiny")
    net = build_siamfc_net(cfg.model)
    assert net.feature == "c3" and net.stride == 8 and net.response_size == 17
    assert isinstance(build_backbone("siamfc_tiny"), torch.nn.Module)
    tracking = dataclasses.replace(TrackingOptions(), scales=5)
    tracker = SiamFCTracker(net, tracking)
    assert len(tracker.scale_factors) == 5 and tracker.scale_factors[2] == 1.0
    crop = crop_square(np.zeros((10, 10, 3), np.uint8), (5, 5), 40, 20, (7, 8, 9))
    assert crop.shape == (20, 20, 3) and tuple(crop[0, 0]) == (7, 8, 9)  # outside the frame: the fill colour
    assert isinstance(net, SiamFCNet)
