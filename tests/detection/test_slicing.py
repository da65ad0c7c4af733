"""Sliced inference: window geometry, boxes moved to image pixels, merging across window borders, the same answers
batched or one window at a time, and the --slice flags of predict (images, video frames) and eval."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

from datasets.core.coco import load_coco, new_coco, save_coco
from datasets.core.errors import UserError
from datasets.core.images import read_rgb, write_image
from detection.cli.eval import main as eval_main
from detection.cli.predict import main as predict_main
from detection.engine.report import evaluate_results
from detection.inference.slice_options import SliceOptions
from detection.inference.slicing import predict_images, predict_sliced, starts, windows
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


def mosaic(tiles: list[np.ndarray]) -> np.ndarray:
    """Four equal images as one, 2x2, in reading order."""
    return np.concatenate([np.concatenate(tiles[:2], 1), np.concatenate(tiles[2:], 1)], 0)


@pytest.fixture(scope="module")
def large_dir(shapes_dir, tmp_path_factory) -> Path:
    """Two 256x256 images, each a 2x2 mosaic of shapes images, with their annotations moved along."""
    source = load_coco(shapes_dir / "annotations.json")
    out = tmp_path_factory.mktemp("large")
    images, annotations = [], []
    for number in range(2):
        parts = sorted(source["images"], key=lambda im: im["id"])[4 * number:4 * number + 4]
        tiles = [cv2.imread(str(shapes_dir / "images" / im["file_name"])) for im in parts]
        name = f"mosaic{number}.png"
        write_image(out / "images" / name, mosaic(tiles))
        images.append({"id": number + 1, "file_name": name, "width": 256, "height": 256})
        for place, part in enumerate(parts):
            dx, dy = 128 * (place % 2), 128 * (place // 2)
            for ann in (a for a in source["annotations"] if a["image_id"] == part["id"]):
                x, y, w, h = ann["bbox"]
                annotations.append({**ann, "id": len(annotations) + 1, "image_id": number + 1,
                                    "bbox": [x + dx, y + dy, w, h], "segmentation": []})
    save_coco(out / "annotations.json", new_coco(images, annotations, source["categories"], {}))
    return out


SLICED = ["--slice", "128", "--overlap", "0.25", "--slice-merge", "nmm", "--batch-size", "3"]
SLICE_OPTIONS = SliceOptions(size=128, overlap=0.25, merge="nmm", batch=3)


def sliced_by_hand(checkpoint: Path, images: list[np.ndarray], threshold: float, top_k: int | None) -> list[list]:
    predictor = Predictor.from_checkpoint(checkpoint, "cpu")
    return [[{k: d[k] for k in ("bbox", "score", "category_id")}
             for d in predict_sliced(predictor, image, SLICE_OPTIONS, threshold, top_k)] for image in images]


def test_predict_slices_images_and_video_frames(tiny_checkpoint, large_dir, tmp_path):
    names = ["mosaic0.png", "mosaic1.png"]
    images = [read_rgb(large_dir / "images" / name) for name in names]
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 5.0, (256, 256))
    for image in images:
        writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    writer.release()
    capture = cv2.VideoCapture(str(video))
    frames = [cv2.cvtColor(capture.read()[1], cv2.COLOR_BGR2RGB) for _ in names]
    capture.release()
    for source, pictures, key in ((large_dir / "images", images, "file_name"), (video, frames, "image_id")):
        out = tmp_path / f"out-{source.stem}"
        assert predict_main(["--checkpoint", str(tiny_checkpoint), "--source", str(source), "--out", str(out),
                             "--score-threshold", "0.05", "--no-draw", "--device", "cpu", *SLICED]) == 0
        results = json.loads((out / "predictions.json").read_text())
        keys = names if key == "file_name" else [1, 2]
        got = [[{k: r[k] for k in ("bbox", "score", "category_id")} for r in results if r[key] == name]
               for name in keys]
        assert got == sliced_by_hand(tiny_checkpoint, pictures, 0.05, None) and all(got), source


def test_eval_slices_the_original_images_and_prints_ap_by_size(tiny_checkpoint, large_dir, tmp_path, capsys):
    """The sliced evaluation (metrics, per-class AP, confusion matrix) is what `predict --slice` finds at eval's
    thresholds, scored. The tiny checkpoint's AP is near 0: the confusion matrix at score 0.1 carries the check."""
    common = ["--checkpoint", str(tiny_checkpoint), "--device", "cpu", "--score-threshold", "0.001",
              "--max-detections", "300", *SLICED]
    annotations = str(large_dir / "annotations.json")
    assert eval_main([*common, "--annotations", annotations, "--images", str(large_dir / "images"),
                      "--out", str(tmp_path / "eval.json"), "--confusion-score", "0.1"]) == 0
    printed = capsys.readouterr().out
    assert "AP by object size (small < 32x32 px <= medium < 96x96 px <= large): small " in printed
    assert predict_main([*common, "--source", str(large_dir / "images"), "--out", str(tmp_path / "pred"),
                         "--annotations", annotations, "--no-draw"]) == 0
    predictions = json.loads((tmp_path / "pred" / "predictions.json").read_text())
    want = evaluate_results(COCO(annotations), predictions, score_threshold=0.1).record()
    got = json.loads((tmp_path / "eval.json").read_text())
    assert sum(map(sum, got["confusion_matrix"]["counts"])) > 0 and got == want


@pytest.mark.parametrize("flags, name", [(["--slice", "16"], "slice"), (["--slice", "64", "--overlap", "0.9"],
                                                                        "overlap")])
def test_bad_slice_flags_exit_1_naming_the_flag(flags, name, shapes_image, shapes_dir, tmp_path, capsys):
    predicted = predict_main(["--checkpoint", "missing.pt", "--source", str(shapes_image), "--out", str(tmp_path),
                              *flags])
    evaluated = eval_main(["--checkpoint", "missing.pt", "--annotations", str(shapes_dir / "annotations.json"),
                           "--images", str(shapes_dir / "images"), *flags])
    assert (predicted, evaluated) == (1, 1)
    assert capsys.readouterr().err.count(f"error: {name} must be") == 2
