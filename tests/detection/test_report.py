"""Per-class AP (from COCOeval's arrays), the confusion matrix, the pictures of a run and of an evaluation,
`python -m detection.plot`, and TensorBoard (missing package and written scalars)."""
from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from datasets.core.errors import UserError
from datasets.synthetic.shapes import make_shapes
from datasets.view.draw import color_of
from detection.cli.plot import main as plot_main
from detection.data.coco import CocoDetection, collate
from detection.data.transforms import build_transform
from detection.engine.checkpoint import load_model
from detection.engine.confusion import confusion_matrix
from detection.engine.evaluator import coco_metrics, predict_loader, run_cocoeval
from detection.engine.per_class import per_class_ap
from detection.tasks import build_trainer
from detection.viz.curves import curves_figure, read_curves
from detection.viz.gallery import CAPTION, gallery
from test_scripts import assert_one_error_line, train_args  # tests/detection is on sys.path (prepend mode)
from test_trainer import FAST, read_jsonl
from tiny_run import tiny_config


def decoded(path: Path) -> np.ndarray:
    image = cv2.imread(str(path))
    assert image is not None, f"{path} does not decode"
    return image


@pytest.fixture(scope="module")
def model_results(tiny_checkpoint, shapes_dir) -> tuple[COCO, list[dict]]:
    """The tiny checkpoint's detections on its 16 training images, with the ground truth."""
    loaded = load_model(tiny_checkpoint)
    dataset = CocoDetection(shapes_dir / "annotations.json", shapes_dir / "images",
                            build_transform(loaded.config.data.input_size, train=False))
    loader = torch.utils.data.DataLoader(dataset, batch_size=8, collate_fn=collate)
    return dataset.coco, predict_loader(loaded.model, loader, loaded.categories, torch.device("cpu"))


# ---- per-class AP ------------------------------------------------------------------------------

def test_per_class_ap_is_cocoeval_per_category_and_averages_to_map(model_results):
    coco, results = model_results
    evaluator, _ = run_cocoeval(coco, results)
    rows = per_class_ap(coco, evaluator)
    metrics, _ = coco_metrics(coco, results)
    assert [r["category"] for r in rows] == ["circle", "square", "triangle"]
    assert 0 < metrics["bbox_mAP_50"] < 1  # a real, imperfect model: the averages below mean something
    for key, name in (("AP", "bbox_mAP"), ("AP50", "bbox_mAP_50"), ("AP75", "bbox_mAP_75")):
        assert np.mean([r[key] for r in rows]) == pytest.approx(metrics[name], abs=1e-12)
    for row in rows:  # COCOeval restricted to the one category gives the same AP
        with contextlib.redirect_stdout(io.StringIO()):
            alone = COCOeval(coco, coco.loadRes(results), "bbox")
            alone.params.catIds = [row["category_id"]]
            alone.evaluate(), alone.accumulate(), alone.summarize()
        assert [row["AP"], row["AP50"], row["AP75"]] == pytest.approx(list(alone.stats[:3]), abs=1e-12)
    anns = [a for a in coco.dataset["annotations"] if not a.get("iscrowd", 0)]
    assert sum(r["instances"] for r in rows) == len(anns)
    assert rows[0]["images"] == len({a["image_id"] for a in anns if a["category_id"] == rows[0]["category_id"]})


def test_category_without_ground_truth_has_no_ap_and_is_left_out_of_the_mean(shapes_dir):
    data = json.loads((shapes_dir / "annotations.json").read_text())
    data["annotations"] = [a for a in data["annotations"] if a["category_id"] != 3]
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    found = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 0.9}
             for a in data["annotations"] if not a.get("iscrowd", 0)]
    found = found[::2] + [dict(r, score=0.5, category_id=3) for r in found[1::2]]  # half found, half mislabelled
    evaluator, _ = run_cocoeval(coco, found)
    rows = per_class_ap(coco, evaluator)
    assert rows[2]["AP"] is None and rows[2]["instances"] == 0
    assert 0.2 < rows[0]["AP"] < 0.8
    defined = [r["AP"] for r in rows if r["AP"] is not None]
    assert np.mean(defined) == pytest.approx(coco_metrics(coco, found)[0]["bbox_mAP"], abs=1e-12)
    assert [r["AP"] for r in per_class_ap(coco, None)] == [0.0, 0.0, None]  # no detections at all


# ---- confusion matrix --------------------------------------------------------------------------

def hand_made_coco() -> COCO:
    """Two classes (cat 1, dog 2); image 1: cat, dog, cat, a dog crowd region; image 2: a cat; image 3: empty."""
    anns = [(1, 1, [0, 0, 20, 20], 0), (1, 2, [40, 40, 20, 20], 0), (1, 1, [70, 0, 20, 20], 0),
            (1, 2, [0, 60, 40, 40], 1), (2, 1, [10, 10, 40, 40], 0)]
    coco = COCO()
    coco.dataset = {
        "images": [{"id": i, "file_name": f"{i}.png", "width": 100, "height": 100} for i in (1, 2, 3)],
        "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
        "annotations": [{"id": n + 1, "image_id": im, "category_id": c, "bbox": box, "area": box[2] * box[3],
                         "iscrowd": crowd} for n, (im, c, box, crowd) in enumerate(anns)]}
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


HAND_MADE_DETECTIONS = [  # (image, category, box, score)
    (1, 1, [0, 0, 20, 20], 0.9),  # the first cat: matched
    (1, 1, [1, 1, 20, 20], 0.8),  # the first cat again (IoU 0.82), already taken: a false cat
    (1, 1, [40, 40, 20, 20], 0.7),  # on the dog: the one confusion, dog -> cat
    (1, 1, [70, 0, 20, 20], 0.1),  # the second cat, under the score threshold: that cat is missed
    (1, 2, [5, 65, 10, 10], 0.6),  # inside the crowd region: ignored
    (1, 2, [80, 80, 15, 15], 0.5),  # on nothing: a false dog
    (2, 2, [10, 10, 40, 40], 0.9),  # a dog on the cat (IoU 1.0) ...
    (2, 1, [12, 12, 40, 40], 0.8),  # ... and a cat on it (IoU 0.82): the same class is matched first
]


def test_confusion_matrix_of_a_hand_made_case():
    coco = hand_made_coco()
    results = [{"image_id": i, "category_id": c, "bbox": b, "score": s} for i, c, b, s in HAND_MADE_DETECTIONS]
    # rows: ground truth cat, dog, background; columns: predicted cat, dog, background
    assert confusion_matrix(coco, results, score_threshold=0.25).tolist() == [[2, 0, 1], [1, 0, 0], [1, 2, 0]]
    assert confusion_matrix(coco, results, score_threshold=0.05).tolist() == [[3, 0, 0], [1, 0, 0], [1, 2, 0]]
    # at IoU 0.9 the cat at 0.82 no longer matches image 2's cat: the dog on it (IoU 1.0) is a confusion
    assert confusion_matrix(coco, results, 0.25, iou_threshold=0.9).tolist() == [[1, 1, 1], [1, 0, 0], [2, 1, 0]]
    # only the two detections at 0.9 left: the first cat, and image 2's dog on a cat
    assert confusion_matrix(coco, results, score_threshold=0.85).tolist() == [[1, 1, 1], [0, 0, 1], [0, 0, 0]]
    assert confusion_matrix(coco, [], score_threshold=0.25).tolist() == [[0, 0, 3], [0, 0, 1], [0, 0, 0]]


# ---- the pictures of a training run (the session's tiny run: 2 epochs, evaluated at the last) ------

def test_run_writes_per_class_and_pictures(tiny_checkpoint):
    run = tiny_checkpoint.parent
    epochs = [r for r in read_jsonl(run / "metrics.jsonl") if r["type"] == "epoch"]
    assert "per_class" not in epochs[0] and len(epochs[-1]["per_class"]) == 3
    assert np.mean([r["AP"] for r in epochs[-1]["per_class"]]) == pytest.approx(epochs[-1]["bbox_mAP"], abs=1e-4)
    assert "per_class" not in torch.load(tiny_checkpoint, weights_only=True)["metrics"]  # 12 numbers, as before
    minimum = {"results.png": (1600, 600), "pr_curves.png": (900, 650), "confusion_matrix.png": (1200, 550),
               "val_predictions.jpg": (1640, 1300)}
    for name, (width, height) in minimum.items():
        image = decoded(run / name)
        assert image.shape[1] >= width and image.shape[0] >= height, (name, image.shape)
        assert image.std() > 10, f"{name} is blank"


def test_results_png_plots_one_point_per_logged_epoch(tiny_checkpoint):
    records = read_jsonl(tiny_checkpoint.parent / "metrics.jsonl")
    epochs = [r for r in records if r["type"] == "epoch"]
    curves = read_curves(tiny_checkpoint.parent)
    fig = curves_figure([curves], "tiny")
    panels = {ax.get_title(): ax for ax in fig.axes if ax.get_visible()}
    loss_names = [k for k in epochs[0] if k.startswith("loss")]
    assert len(loss_names) == 5  # loss and Faster R-CNN's four terms
    assert set(panels) == {*loss_names, "lr", "val bbox_mAP", "val bbox_mAP_50"}
    for name in [*loss_names, "lr"]:
        (line,) = panels[name].lines
        assert list(line.get_xdata()) == [1, 2]
        assert list(line.get_ydata()) == pytest.approx([e[name] for e in epochs])
    for name in ("bbox_mAP", "bbox_mAP_50"):  # evaluated at the last epoch only
        (line,) = panels[f"val {name}"].lines
        assert list(line.get_xdata()) == [2] and list(line.get_ydata()) == [epochs[-1][name]]
    train = [r for r in records if r["type"] == "train" and r["epoch"] == 1]
    assert epochs[0]["loss"] == pytest.approx(np.mean([r["loss"] for r in train]), abs=1e-4)  # log_every=1


def test_curves_of_a_run_logged_before_epoch_loss_terms(tmp_path):
    """Older metrics.jsonl: epoch records with the mean loss only; the terms come from the step records."""
    steps = [{"type": "train", "epoch": e, "step": s, "loss": 1.0, "loss_a": a, "lr": lr}
             for e, s, a, lr in [(1, 1, 0.6, 0.01), (1, 2, 0.4, 0.02), (2, 3, 0.3, 0.03)]]
    epochs = [{"type": "epoch", "epoch": 1, "loss": 1.0}, {"type": "epoch", "epoch": 2, "loss": 0.9, "bbox_mAP": 0.2}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in steps + epochs) + '{"type": "ep')
    curves = read_curves(tmp_path)
    assert curves.series["loss_a"] == ([1, 2], pytest.approx([0.5, 0.3]))
    assert curves.series["lr"] == ([1, 2], [0.02, 0.03])
    assert curves.series["bbox_mAP"] == ([2], [0.2])


def test_gallery_scales_boxes_with_the_image():
    image = np.full((100, 200, 3), 40, np.uint8)  # 200 wide: drawn 2x, into a 400 px tile
    truth = [{"bbox": [20, 10, 40, 30], "category_id": 1, "category": "cat"}]
    picture = gallery([("a.png", image, truth, [dict(truth[0], score=0.9), dict(truth[0], score=0.1)])], 0.5)
    tile_gt = picture[CAPTION:, :400]
    assert tuple(tile_gt[20 + 30, 40]) == color_of(1)  # left edge of the box at (40, 20)-(120, 80)
    assert tuple(tile_gt[50, 20]) == (40, 40, 40)  # outside the box: the image
    assert tuple(tile_gt[300, 300]) != (40, 40, 40)  # below the image: padding
    assert picture.shape[1] > 800  # the prediction tile beside it


def test_eval_cli_bad_picture_options(tmp_path, capsys, tiny_checkpoint, shapes_dir):
    from detection.cli.eval import main as eval_main

    base = ["--checkpoint", str(tiny_checkpoint), "--annotations", str(shapes_dir / "annotations.json"),
            "--images", str(shapes_dir / "images"), "--out", str(tmp_path / "eval.json"), "--device", "cpu"]
    (tmp_path / "taken").write_text("a file")
    assert eval_main([*base, "--plots", str(tmp_path / "taken")]) == 1
    assert_one_error_line(capsys, "--plots", "taken", "not a folder")
    assert eval_main([*base, "--confusion-score", "1.5"]) == 1
    assert_one_error_line(capsys, "--confusion-score", "1.5")
    assert [p.name for p in tmp_path.iterdir()] == ["taken"]


def test_labels_of_overlapping_boxes_do_not_cover_each_other():
    from datasets.view.draw import label_size
    from detection.viz.detections import free_anchor

    taken: list = []
    box = ((50, 50), (150, 150))
    height = label_size("cat 0.90")[1]
    anchors = [free_anchor((200, 200, 3), text, *box, taken) for text in ("cat 0.90", "dog 0.40", "cat 0.30")]
    assert anchors == [50, 50 + height, 150 + height]  # above the box, inside its top, below it
    assert free_anchor((200, 200, 3), "dog 0.20", *box, taken) is None  # no room left: no label
    assert free_anchor((200, 200, 3), "far", (160, 5), (190, 40), taken) == height  # kept inside the image top


# ---- python -m detection.plot ------------------------------------------------------------------

def test_plot_cli_compares_runs(tmp_path, capsys, tiny_checkpoint):
    other = tmp_path / "other"
    other.mkdir()
    records = read_jsonl(tiny_checkpoint.parent / "metrics.jsonl")
    (other / "metrics.jsonl").write_text("".join(json.dumps({**r, "loss": r["loss"] / 2}) + "\n" for r in records))
    out = tmp_path / "compare.png"
    assert plot_main([str(tiny_checkpoint.parent), str(other), "--out", str(out)]) == 0
    assert decoded(out).shape[1] >= 1600
    fig = curves_figure([read_curves(tiny_checkpoint.parent), read_curves(other)], "two")
    loss = next(ax for ax in fig.axes if ax.get_title() == "loss")
    assert [line.get_label() for line in loss.lines] == [tiny_checkpoint.parent.name, "other"]
    assert list(loss.lines[1].get_ydata()) == pytest.approx(np.asarray(loss.lines[0].get_ydata()) / 2)


def test_plot_cli_bad_input(tmp_path, capsys, tiny_checkpoint):
    run = str(tiny_checkpoint.parent)
    empty = tmp_path / "empty"
    empty.mkdir()
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "metrics.jsonl").write_text('{"type": "train", "epoch": 1, "step": 1, "loss": 1.0}\n')
    cases = [([run, str(tmp_path / "gone")], "gone"), ([run, str(empty)], "no metrics.jsonl"),
             ([str(unfinished)], "no finished epoch")]
    for runs, fragment in cases:
        assert plot_main([*runs, "--out", str(tmp_path / "c.png")]) == 1
        assert_one_error_line(capsys, fragment)
    assert plot_main([run, "--out", str(tmp_path / "c.txt")]) == 1
    assert_one_error_line(capsys, "c.txt", ".png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "unfinished"]


# ---- TensorBoard -------------------------------------------------------------------------------

def test_missing_tensorboard_is_one_clear_error(tmp_path, capsys, monkeypatch, shapes_dir):
    from detection.cli.train import main as train_main

    monkeypatch.setitem(sys.modules, "tensorboard", None)  # import tensorboard now raises ImportError
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    cfg = tiny_config(tmp_path / "run", shapes_dir, **{"train.tensorboard": "true"})
    with pytest.raises(UserError, match=r"'tensorboard' package.*pip install tensorboard"):
        build_trainer(cfg, progress=False)
    assert train_main(train_args(tmp_path / "run", shapes_dir, "train.tensorboard=true")) == 1
    assert_one_error_line(capsys, "'tensorboard' package", "pip install tensorboard")
    assert not (tmp_path / "run").exists()


def test_tensorboard_scalars_and_plots_off(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    data = tmp_path / "data"
    make_shapes(data, 8, seed=5, image_size=64, min_size=12, max_size=32)
    out = tmp_path / "run"
    cfg = tiny_config(out, data, **{**FAST, "data.val.annotations": str(data / "annotations.json"),
                                    "train.tensorboard": "true", "train.plots": "false"})
    build_trainer(cfg, progress=False).fit()
    assert not list(out.glob("*.png")) and not list(out.glob("*.jpg"))  # train.plots=false
    events = EventAccumulator(str(out / "tb"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    epoch = [r for r in read_jsonl(out / "metrics.jsonl") if r["type"] == "epoch"][-1]
    per_class = {f"val_{key}/{r['category']}" for r in epoch["per_class"] for key in ("AP", "AP50")
                 if r[key] is not None}
    assert len(per_class) >= 4
    assert {"train/loss", "train/loss_classifier", "train/lr", "epoch/loss", "epoch/lr", "val/bbox_mAP",
            "val/bbox_mAP_50", *per_class} <= tags
    assert [(e.step, e.value) for e in events.Scalars("val/bbox_mAP")] == [(1, pytest.approx(epoch["bbox_mAP"]))]
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2]  # log_every=1, two steps
