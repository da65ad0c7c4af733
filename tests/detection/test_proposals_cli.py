"""python -m detection.proposals: writes {file_name: [[x, y, w, h], ...]} for an image or a folder, and answers
bad input with one `error:` line and exit status 1."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from datasets.synthetic.shapes import make_shapes
from detection.cli.proposals import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Three 64 px shapes images, one of them in a subfolder."""
    root = tmp_path_factory.mktemp("cli_shapes")
    make_shapes(root, 3, seed=5, image_size=64, min_size=12, max_size=30)
    images = root / "images"
    (images / "sub").mkdir()
    shutil.move(images / "000002.png", images / "sub" / "000002.png")
    return images


def assert_one_error_line(capsys, *fragments: str) -> None:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def test_folder_to_json_keyed_by_relative_name(tmp_path, folder, capsys):
    out = tmp_path / "proposals.json"
    assert main(["--source", str(folder), "--method", "sliding_window", "--max", "25", "--workers", "1",
                 "--out", str(out), "--no-progress"]) == 0
    data = json.loads(out.read_text())
    assert sorted(data) == ["000000.png", "000001.png", "sub/000002.png"]
    for boxes in data.values():
        assert 1 <= len(boxes) <= 25
        for x, y, w, h in boxes:
            assert x >= 0 and y >= 0 and w > 0 and h > 0 and x + w <= 64 and y + h <= 64
    printed = capsys.readouterr().out
    assert "3 images" in printed and "ms/image" in printed


def test_cache_folder_is_reused(tmp_path, folder, capsys):
    args = ["--source", str(folder / "000000.png"), "--method", "selective_search", "--mode", "single",
            "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "p.json"), "--no-progress"]
    assert main(args) == 0 and "1 computed" in capsys.readouterr().out
    assert main(args) == 0 and "0 computed (all from the cache)" in capsys.readouterr().out
    assert list(json.loads((tmp_path / "p.json").read_text())) == ["000000.png"]


@pytest.mark.parametrize("args, fragments", [
    (["--source", "{tmp}/none"], ["source not found", "none"]),
    (["--source", "{tmp}/empty"], ["no images"]),
    (["--source", "{tmp}/broken.png"], ["broken.png: not a readable image"]),
    (["--source", "{tmp}/notes.txt"], ["notes.txt: not an image"]),
    (["--source", "{folder}", "--method", "selective"], ["unknown proposal method 'selective'", "selective_search"]),
    (["--source", "{folder}", "--method", "rpn", "--checkpoint", "{tmp}/none.pt"], ["none.pt"]),
    (["--source", "{folder}", "--max", "-1"], ["--max"]),
    (["--source", "{folder}", "--workers", "0"], ["--workers"]),
])
def test_bad_input_is_one_error_line_and_status_1(tmp_path, folder, capsys, args, fragments):
    (tmp_path / "empty").mkdir()
    (tmp_path / "broken.png").write_bytes(b"not an image")
    (tmp_path / "notes.txt").write_text("hello")
    args = [a.format(tmp=tmp_path, folder=folder) for a in args]
    out = tmp_path / "out.json"
    assert main(["--out", str(out), "--workers", "1", "--no-progress", *args]) == 1  # later flags win
    assert_one_error_line(capsys, *fragments)
    assert not out.exists()


def test_module_entry_point_with_worker_processes(tmp_path, folder):
    out = tmp_path / "p.json"
    result = subprocess.run([sys.executable, "-m", "detection.proposals", "--source", str(folder), "--method",
                             "selective_search", "--mode", "single", "--workers", "2", "--out", str(out)],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert len(json.loads(out.read_text())) == 3 and "ms/image" in result.stdout
