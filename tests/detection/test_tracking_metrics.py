"""Tracking metrics on cases whose answers are known by hand, the files they read, and the metrics CLI."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from datasets.core.errors import UserError
from detection.cli.track_metrics import main
from detection.tracking.metrics import mot_metrics, sot_metrics
from detection.tracking.mot_io import MotRows, read_mot, read_rects

FRAMES = 10


def rows(frames, ids, boxes, scores=None) -> MotRows:
    n = len(frames)
    scores = np.ones(n) if scores is None else np.asarray(scores, float)
    return MotRows(np.asarray(frames), np.asarray(ids), np.asarray(boxes, float).reshape(-1, 4), scores,
                   np.ones(n, int), np.ones(n))


@pytest.fixture
def gt() -> MotRows:
    """Two 20x20 objects over 10 frames, moving apart from x=10 and x=100."""
    frames = np.repeat(np.arange(1, FRAMES + 1), 2)
    ids = np.tile([1, 2], FRAMES)
    boxes = [[10 + 3 * f if i == 1 else 100 - 3 * f, 20, 20, 20] for f, i in zip(frames, ids)]
    return rows(frames, ids, boxes)


def test_ground_truth_against_itself_is_perfect(gt):
    m = mot_metrics(gt, rows(gt.frames, gt.ids + 7, gt.boxes))  # tracker ids need not equal gt ids
    assert (m["mota"], m["idf1"], m["hota"], m["deta"], m["assa"], m["motp"]) == (1, 1, 1, 1, 1, 1)
    assert (m["id_switches"], m["false_positives"], m["misses"], m["gt_boxes"]) == (0, 0, 0, 2 * FRAMES)


def test_swapped_ids_halfway(gt):
    ids = np.where(gt.frames > 5, 3 - gt.ids, gt.ids)
    m = mot_metrics(gt, rows(gt.frames, ids, gt.boxes))
    assert m["id_switches"] == 2 and m["mota"] == pytest.approx(1 - 2 / 20)
    assert m["idf1"] == pytest.approx(0.5)  # each id right for 5 of its 10 frames
    assert m["deta"] == pytest.approx(1) and m["assa"] == pytest.approx(5 / 15)  # 5 / (10 + 10 - 5)
    assert m["hota"] == pytest.approx(np.sqrt(1 / 3))


def test_dropped_and_false_boxes(gt):
    keep = np.ones(len(gt), bool)
    keep[[0, 3, 8, 13]] = False
    m = mot_metrics(gt, rows(gt.frames[keep], gt.ids[keep], gt.boxes[keep]))
    assert m["misses"] == 4 and m["mota"] == pytest.approx(0.8)
    assert m["idf1"] == pytest.approx(2 * 16 / (2 * 16 + 4))
    assert m["hota"] == pytest.approx(0.8)  # DetA 16/20, AssA 8 / (10 + 8 - 8)
    extra = rows(np.r_[gt.frames, 1, 2], np.r_[gt.ids, 9, 9], np.r_[gt.boxes, [[300, 300, 20, 20]] * 2])
    m = mot_metrics(gt, extra)
    assert m["false_positives"] == 2 and m["mota"] == pytest.approx(0.9)
    assert m["idf1"] == pytest.approx(40 / 42)


def test_hota_follows_localisation_while_mota_does_not(gt):
    shifted = gt.boxes + [4, 0, 0, 0]  # IoU 16/24 = 0.667: matched for alpha 0.05 .. 0.65 only
    m = mot_metrics(gt, rows(gt.frames, gt.ids, shifted))
    assert m["mota"] == 1 and m["idf1"] == 1
    assert m["hota"] == pytest.approx(13 / 19) and m["motp"] == pytest.approx(2 / 3)


def test_ground_truth_rows_not_considered_are_left_out(gt):
    flags = np.where(gt.ids == 2, 0.0, 1.0)
    m = mot_metrics(rows(gt.frames, gt.ids, gt.boxes, flags), rows(gt.frames, gt.ids, gt.boxes))
    assert m["gt_boxes"] == FRAMES and m["false_positives"] == FRAMES


def test_sot_ground_truth_against_itself():
    boxes = np.array([[10 + 2 * f, 30, 50, 40] for f in range(20)], float)
    m = sot_metrics(boxes, boxes)
    assert m["precision_20"] == 1 and m["mean_iou"] == 1
    assert m["success"] == [1.0] * 20 + [0.0]  # IoU > 1 never holds: the OTB convention
    assert m["success_auc"] == pytest.approx(20 / 21)


def test_sot_half_the_frames_off_by_25_px():
    gt = np.array([[100, 100, 50, 50]] * 10, float)
    results = gt.copy()
    results[5:, 0] += 25  # IoU 25 / 75 = 1/3, centre error 25 px
    m = sot_metrics(gt, results)
    assert m["precision_20"] == 0.5 and m["precision"][25] == 1.0
    assert m["success_auc"] == pytest.approx((20 + 7) / 42)  # 7 thresholds 0 .. 0.30 below 1/3
    with pytest.raises(UserError, match="5 boxes for 10"):
        sot_metrics(gt, results[:5])


def test_files_name_the_bad_line(tmp_path):
    path = tmp_path / "gt.txt"
    path.write_text("1,1,10,10,5,5,1,1,1\n\n1,2,10,ten,5,5,1,1,1\n")
    with pytest.raises(UserError, match=r"gt.txt, line 3: .*'1,2,10,ten"):
        read_mot(path)
    path.write_text("0,1,10,10,5,5\n")
    with pytest.raises(UserError, match="line 1: frame must be"):
        read_mot(path)
    path.write_text("1\t2\t30\t40\n5 6 7 8\n")
    assert read_rects(path).tolist() == [[1, 2, 30, 40], [5, 6, 7, 8]]
    with pytest.raises(UserError, match="not found"):
        read_mot(tmp_path / "none.txt")


def write_mot(path, data: MotRows) -> None:
    path.write_text("".join(f"{f},{i},{b[0]},{b[1]},{b[2]},{b[3]},1,1,1\n"
                            for f, i, b in zip(data.frames, data.ids, data.boxes)))


def test_cli_mot_prints_a_table_and_a_json_line(tmp_path, capsys, gt):
    write_mot(tmp_path / "gt.txt", gt)
    write_mot(tmp_path / "res.txt", rows(gt.frames, np.where(gt.frames > 5, 3 - gt.ids, gt.ids), gt.boxes))
    assert main(["--gt", str(tmp_path / "gt.txt"), "--results", str(tmp_path / "res.txt")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["mota", "idf1", "hota"]
    summary = json.loads(lines[-1])
    assert summary["kind"] == "mot" and summary["idf1"] == pytest.approx(0.5) and summary["id_switches"] == 2


def test_cli_sot_with_plot(tmp_path, capsys):
    lines = "".join(f"{10 + f},20,30,40\n" for f in range(15))
    (tmp_path / "groundtruth_rect.txt").write_text(lines)
    (tmp_path / "result.txt").write_text(lines)
    plot = tmp_path / "success.png"
    assert main(["--gt", str(tmp_path / "groundtruth_rect.txt"), "--results", str(tmp_path / "result.txt"),
                 "--plot", str(plot)]) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert summary["kind"] == "sot" and summary["precision_20"] == 1 and summary["frames"] == 15
    assert cv2.imread(str(plot)).shape[1] > 500


@pytest.mark.parametrize("case, fragment", [("missing", "missing.txt"), ("malformed", "bad.txt, line 2"),
                                            ("plot", "--kind sot")])
def test_cli_bad_input_is_one_error_line(tmp_path, capsys, gt, case, fragment):
    write_mot(tmp_path / "gt.txt", gt)
    (tmp_path / "bad.txt").write_text("1,1,10,20,20,20\n1,2,x\n")
    results = {"missing": "missing.txt", "malformed": "bad.txt", "plot": "gt.txt"}[case]
    extra = ["--plot", str(tmp_path / "p.png")] if case == "plot" else []
    assert main(["--gt", str(tmp_path / "gt.txt"), "--results", str(tmp_path / results), *extra]) == 1
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and fragment in errors[0] and "Traceback" not in err
