"""Sliced inference: window geometry, boxes moved to image pixels, merging across window borders, and the
same answers batched or one window at a time."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from datasets.core.errors import UserError
from datasets.core.images import read_rgb
from detection.inference.slicing import SliceOptions, predict_images, predict_sliced, starts, windows
from detection.inference.predictor import Predictor


class BlobPredictor:
    """A stand-in detector with exact answers: one box per connected blob of non-black pixels, score 0.9,
    category 1. It records the sizes of the images it was given."""

    def __init__(self) -> None:
        self.calls: list[list[tuple[int, int]]] = []

    def predict(self, images, score_threshold=None, max_detections=None):
        self.calls.append([image.shape[:2] for image in images])
        return [self.blobs(image) for image in images]

    @staticmethod
    def blobs(image: np.ndarray) -> list[dict]:
        mask = (image.max(axis=2) > 0).astype(np.uint8)
        count, _, stats, _ = cv2.connectedComponentsWithStats(mask)
        return [{"bbox": [float(x), float(y), float(w), float(h)], "score": 0.9, "category_id": 1, "category": "blob"}
                for x, y, w, h, _ in stats[1:count]]


def canvas(width: int, height: int, *rects: tuple[int, int, int, int]) -> np.ndarray:
    image = np.zeros((height, width, 3), np.uint8)
    for x, y, w, h in rects:
        image[y:y + h, x:x + w] = 200
    return image


def test_windows_overlap_and_the_last_is_flush_with_the_border():
    assert starts(1000, 256, 0.25) == [0, 192, 384, 576, 744]
    assert starts(100, 256, 0.2) == [0]  # a slice larger than the image is one window
    boxes = windows(1000, 300, 256, 0.25)
    assert len(boxes) == 5 * 2 and boxes[-1] == (744, 44, 1000, 300)
    assert windows(200, 100, 256, 0.2) == [(0, 0, 200, 100)]


def test_small_object_in_a_large_image_is_found_at_its_place():
    image = canvas(1200, 900, (700, 500, 12, 10))
    found = predict_sliced(BlobPredictor(), image, SliceOptions(size=256, overlap=0.2))
    assert [d["bbox"] for d in found] == [[700.0, 500.0, 12.0, 10.0]]


def test_object_cut_by_a_window_border_gives_one_box_after_merging():
    """Windows at x 0..256 and 204..460: an object at x 240..300 is seen whole by the second window and cut by the
    first (a piece 16 px wide). Greedy NMM by intersection over the smaller box merges the piece into the object;
    NMS by IoU (0.27 here) keeps both."""
    image = canvas(460, 200, (240, 80, 60, 30))
    merged = predict_sliced(BlobPredictor(), image, SliceOptions(size=256, overlap=0.2, merge="nmm"))
    assert [d["bbox"] for d in merged] == [[240.0, 80.0, 60.0, 30.0]]
    suppressed = predict_sliced(BlobPredictor(), image, SliceOptions(size=256, overlap=0.2, merge="nms"))
    assert sorted(d["bbox"][2] for d in suppressed) == [16.0, 60.0]


def test_full_pass_adds_one_whole_image_call():
    blob = BlobPredictor()
    predict_sliced(blob, canvas(600, 400, (10, 10, 5, 5)), SliceOptions(size=256, overlap=0.2, full=True, batch=4))
    assert [len(call) for call in blob.calls] == [4, 2, 1] and blob.calls[-1] == [(400, 600)]


def test_windows_run_in_batches():
    blob = BlobPredictor()
    predict_sliced(blob, canvas(1000, 1000), SliceOptions(size=256, overlap=0.0, batch=8))
    assert [len(call) for call in blob.calls] == [8, 8]


@pytest.mark.parametrize("kwargs, name", [({"size": 16}, "slice"), ({"size": 64, "overlap": 0.9}, "overlap"),
                                          ({"size": 64, "overlap": -0.1}, "overlap"),
                                          ({"size": 64, "merge": "wbf"}, "merge")])
def test_bad_options_name_the_parameter(kwargs, name):
    with pytest.raises(UserError, match=f"^{name}"):
        SliceOptions(**kwargs).check()


def test_sliced_equals_whole_image_when_the_image_fits_one_window(tiny_checkpoint, shapes_image):
    predictor = Predictor.from_checkpoint(tiny_checkpoint, "cpu")
    image = read_rgb(shapes_image)
    whole = predictor.predict([image], 0.01, 100)[0]
    assert whole and predict_images(predictor, [image], SliceOptions(size=256), 0.01, 100)[0] == whole


def test_batched_windows_equal_windows_one_at_a_time(tiny_checkpoint, shapes_dir):
    """A 2x2 mosaic of shapes images, sliced by a real checkpoint, 4 windows at once or one by one."""
    tiles = [read_rgb(path) for path in sorted((shapes_dir / "images").iterdir())[:4]]
    image = np.concatenate([np.concatenate(tiles[:2], 1), np.concatenate(tiles[2:], 1)], 0)
    predictor = Predictor.from_checkpoint(tiny_checkpoint, "cpu")
    batched = predict_sliced(predictor, image, SliceOptions(size=128, overlap=0.0, batch=4), 0.05, 100)
    single = predict_sliced(predictor, image, SliceOptions(size=128, overlap=0.0, batch=1), 0.05, 100)
    assert batched and len(batched) == len(single)
    for a, b in zip(batched, single):
        assert a["category_id"] == b["category_id"]
        assert a["bbox"] == pytest.approx(b["bbox"], abs=0.05) and a["score"] == pytest.approx(b["score"], abs=1e-4)
