"""`detpipe`, the one command: every subcommand's --help, close matches for a typo, usage errors exit 2,
and `detpipe train` equals `python -m detection.train` on the same config."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from tiny_run import DEMO, FAST_64, ROOT, shapes_64

from detpipe.main import COMMANDS, main

DATA_COMMANDS = ["synth", "glyphs", "from-masks", "convert", "export", "validate", "split", "merge", "tile", "stats",
                 "draw", "anchors", "sequences", "audit"]


def detpipe(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "detpipe", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def test_no_arguments_lists_the_subcommands(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert all(f"  {name} " in out for name in COMMANDS)


def test_unknown_subcommand_names_close_matches(capsys):
    assert main(["trian"]) == 2
    err = capsys.readouterr().err
    assert "unknown subcommand 'trian'" in err and "did you mean train" in err and "Traceback" not in err


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_subcommand_has_help(name):
    result = detpipe(name, "--help")
    assert result.returncode == 0, result.stderr
    assert f"usage: detpipe {name}" in result.stdout


def test_every_data_subcommand_has_help():
    for name in DATA_COMMANDS:
        result = detpipe("data", name, "--help")
        assert result.returncode == 0 and f"usage: detpipe data {name}" in result.stdout, (name, result.stderr)


@pytest.mark.parametrize("args", [["eval", "--no-such-flag"], ["data", "split", "--no-such-flag"],
                                  ["predict"]])
def test_wrong_flag_prints_the_subcommands_usage_and_exits_2(args):
    result = detpipe(*args)
    assert result.returncode == 2
    assert f"usage: detpipe {' '.join(args[:2] if args[0] == 'data' else args[:1])}" in result.stderr
    assert "Traceback" not in result.stderr


def test_detpipe_train_equals_python_m_detection_train(tmp_path):
    data = shapes_64(tmp_path / "data")
    common = [str(DEMO), "train.epochs=1", "train.eval_every=0", "train.plots=false", "device=cpu",
              f"data.train.annotations={data / 'annotations.json'}", f"data.train.images={data / 'images'}",
              "data.val.annotations=", *(f"{k}={v}" for k, v in FAST_64.items())]
    one = detpipe("train", *common, f"output_dir={tmp_path / 'a'}")
    two = subprocess.run([sys.executable, "-m", "detection.train", *common, f"output_dir={tmp_path / 'b'}"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert one.returncode == 0 and two.returncode == 0, (one.stderr, two.stderr)
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=True)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
