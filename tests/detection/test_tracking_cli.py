"""`python -m detection.track` end to end on a generated sequence (public detections, and a tiny detector),
and its answers to bad input: exit status 1, one `error:` line naming the file or line, no output left."""
from __future__ import annotations

import numpy as np
import pytest

from datasets.core.video import open_video, video_frames
from datasets.synthetic.sequences import make_sequences
from datasets.synthetic.shapes import make_shapes
from detection.cli.track import main
from detection.tracking.metrics import mot_metrics
from detection.tracking.mot_io import read_mot

FRAMES = 16


@pytest.fixture(scope="module")
def sequence(tmp_path_factory):
    """seq-0001 (16 crossing frames, 128 px) and a public detections file made from its ground truth."""
    root = tmp_path_factory.mktemp("track")
    annotations = make_shapes(root / "shapes", 6, seed=4)
    folder = make_sequences(annotations, root / "shapes" / "images", root / "seqs", 1, seed=3, frames=FRAMES,
                            objects=3, size=128)[0]
    gt = read_mot(folder / "gt" / "gt.txt")
    lines = [f"{f},-1,{b[0]:g},{b[1]:g},{b[2]:g},{b[3]:g},0.9,-1,-1,-1" for f, b in zip(gt.frames, gt.boxes)]
    (root / "det.txt").write_text("\n".join(lines) + "\n")
    return folder, root / "det.txt"


def video_frame_count(path) -> int:
    return sum(1 for _ in video_frames(open_video(path)))


def one_error_line(capsys, *fragments: str) -> str:
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert all(fragment in errors[0] for fragment in fragments), errors[0]
    return errors[0]


def test_public_detections_on_the_video(sequence, tmp_path, capsys):
    folder, detections = sequence
    out = tmp_path / "out"
    assert main(["--source", str(folder / "seq-0001.mp4"), "--detections", str(detections), "--out", str(out)]) == 0
    assert "frames/s" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["seq-0001.mp4", "seq-0001.txt"]
    lines = (out / "seq-0001.txt").read_text().splitlines()
    assert all(len(line.split(",")) == 10 and line.endswith(",-1,-1,-1") for line in lines)
    results = read_mot(out / "seq-0001.txt")
    assert results.frames.min() == 1 and results.frames.max() == FRAMES
    assert video_frame_count(out / "seq-0001.mp4") == FRAMES
    metrics = mot_metrics(read_mot(folder / "gt" / "gt.txt"), results)
    assert metrics["mota"] == 1 and metrics["idf1"] == 1


def test_frames_folder_is_named_after_its_sequence(sequence, tmp_path):
    folder, detections = sequence
    out = tmp_path / "out"
    assert main(["--source", str(folder / "frames"), "--detections", str(detections), "--out", str(out),
                 "--no-video"]) == 0
    assert [p.name for p in out.iterdir()] == ["seq-0001.txt"]
    assert len(read_mot(out / "seq-0001.txt")) == 3 * FRAMES


def test_tiny_detector_end_to_end(sequence, tmp_path, tiny_checkpoint, capsys):
    folder, _ = sequence
    frames = tmp_path / "clip"
    frames.mkdir()
    for path in sorted((folder / "frames").iterdir())[:4]:
        (frames / path.name).write_bytes(path.read_bytes())
    out = tmp_path / "out"
    assert main(["--source", str(frames), "--checkpoint", str(tiny_checkpoint), "--out", str(out),
                 "--device", "cpu", "--fps", "5"]) == 0
    assert "4 frames" in capsys.readouterr().out
    assert video_frame_count(out / "clip.mp4") == 4
    results = read_mot(out / "clip.txt")  # a weak detector may find little, but what it writes is well formed
    assert set(results.frames) <= {1, 2, 3, 4} and (results.ids >= 1).all()
    assert np.all((results.scores >= 0.1) & (results.scores <= 1))


def test_bad_input(sequence, tmp_path, capsys):
    folder, detections = sequence
    video = str(folder / "seq-0001.mp4")
    malformed = tmp_path / "det_bad.txt"
    malformed.write_text("1,-1,10,10,20,20,0.9\n2,-1,10,10,20\n")
    fake = tmp_path / "fake.mp4"
    fake.write_bytes(b"\x00" * 100)
    cases = [
        (["--source", video, "--detections", str(malformed)], ("det_bad.txt", "line 2")),
        (["--source", video, "--detections", str(tmp_path / "none.txt")], ("none.txt",)),
        (["--source", str(tmp_path / "absent.mp4"), "--detections", str(detections)], ("absent.mp4",)),
        (["--source", str(fake), "--detections", str(detections)], ("fake.mp4", "not a readable video")),
        (["--source", video, "--init", "10,10,20,20"], ("--init needs --checkpoint",)),
        (["--source", video], ("--checkpoint", "--detections")),
        (["--source", video, "--checkpoint", str(tmp_path / "x.pt"), "--nms-iou", "0"], ("--nms-iou",)),
        (["--source", video, "--checkpoint", str(tmp_path / "x.pt")], ("x.pt",)),
        (["--source", video, "--detections", str(detections), "--low-match-iou", "2"], ("low_match_iou", "0..1")),
        (["--source", video, "--detections", str(detections), "--low-threshold", "0.7"], ("low_threshold",)),
    ]
    for index, (args, fragments) in enumerate(cases):
        out = tmp_path / f"out{index}"
        assert main([*args, "--out", str(out)]) == 1, args
        one_error_line(capsys, *fragments)
        assert not (out.exists() and any(out.iterdir())), args


def test_bytetrack_flags_are_the_options_fields(sequence, tmp_path, capsys):
    """Every ByteTrackOptions field is a flag with the field's default; a wrong flag prints the usage, exit 2."""
    import dataclasses

    from detection.cli.track import options_from_args, parse_args
    from detection.tracking.bytetrack import ByteTrackOptions

    folder, detections = sequence
    base = ["--source", str(folder / "seq-0001.mp4"), "--out", str(tmp_path / "o")]
    assert options_from_args(parse_args(base), ByteTrackOptions) == ByteTrackOptions()
    changed = options_from_args(parse_args([*base, "--max-age", "5", "--class-aware", "--embedding-momentum", "0.5"]),
                                ByteTrackOptions)
    assert changed == dataclasses.replace(ByteTrackOptions(), max_age=5, class_aware=True, embedding_momentum=0.5)
    assert main(["--help"]) == 0
    shown = capsys.readouterr().out
    assert all(f"--{f.name.replace('_', '-')}" in shown for f in dataclasses.fields(ByteTrackOptions))
    assert main([*base, "--detections", str(detections), "--max-ages", "5"]) == 2
    assert capsys.readouterr().err.startswith("usage: detpipe track")
