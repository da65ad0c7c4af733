"""Ray Train: 2 CPU workers train a tiny run that eval loads, in single-process training's checkpoint format; resume
continues it; bad trainer.* settings are clear errors. Ray starts once for the module."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from datasets.core.errors import UserError
from detection.cli.train import main as train_main
from detection.config import load_config
from detection.tasks import build_task, build_trainer
from tiny_run import DEMO, FAST_64, shapes_64, tiny_config

# 8 images of 64 px, global batch 4 (2 per worker): two steps per epoch, as in test_trainer.py
FAST = {**FAST_64, "train.plots": "false"}


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    return shapes_64(tmp_path_factory.mktemp("ray64"))


@pytest.fixture(scope="module")
def ray_here():
    """One local Ray for the module (fit_on_ray leaves a Ray it did not start running)."""
    ray = pytest.importorskip("ray")
    from detection.engine.distributed import start_ray

    cfg = load_config(DEMO, ["trainer.num_workers=2"])
    started = start_ray(cfg)
    yield
    if started:
        ray.shutdown()


def overrides(out: Path, data: Path, **extra: str) -> list[str]:
    items = {"output_dir": str(out), "train.epochs": "1", "train.eval_every": "0", "train.max_minutes": "0",
             "train.log_every": "1", "trainer.num_workers": "2",
             "data.train.annotations": str(data / "annotations.json"), "data.train.images": str(data / "images"),
             "data.val.annotations": str(data / "annotations.json"), "data.val.images": str(data / "images"),
             **FAST, **extra}
    return [f"{k}={v}" for k, v in items.items()]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def weights(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def two_worker_run(tmp_path_factory, tiny_data, ray_here) -> Path:
    out = tmp_path_factory.mktemp("ray_run") / "run"
    assert train_main([str(DEMO), *overrides(out, tiny_data), "--no-progress"]) == 0
    return out


def test_two_workers_write_what_single_process_training_writes(two_worker_run, tiny_data, tmp_path):
    out = two_worker_run
    assert {"config.yaml", "metrics.jsonl", "last.pt", "best.pt"} <= {p.name for p in out.iterdir()}
    records = read_jsonl(out / "metrics.jsonl")  # rank 0 alone writes: no line twice
    assert [r["step"] for r in records if r["type"] == "train"] == [1, 2]  # 8 images, global batch 4
    epoch = [r for r in records if r["type"] == "epoch"]
    assert [r["epoch"] for r in epoch] == [1] and "bbox_mAP" in epoch[0] and epoch[0]["images_per_s"] > 0
    assert all(r["loss"] == pytest.approx(sum(r[k] for k in r if k.startswith("loss_")), abs=1e-3)
               for r in records if r["type"] == "train")  # the workers' mean loss is the sum of their mean terms
    single = tmp_path / "single"
    build_trainer(tiny_config(single, tiny_data, **FAST), progress=False).fit()
    for name in ("last.pt", "best.pt"):
        ray_state, plain_state = weights(out / name), weights(single / name)
        assert ray_state.keys() == plain_state.keys(), name
        assert ray_state["model"].keys() == plain_state["model"].keys(), name  # no DDP "module." prefix
    last = weights(out / "last.pt")
    assert last["epoch"] == 1 and last["step"] == 2 and last["config"]["trainer"]["num_workers"] == 2
    reported = list((out / "ray" / "train").glob("checkpoint_*/last.pt"))  # Ray's copy, inside output_dir
    assert len(reported) == 1 and weights(reported[0])["step"] == 2


def test_eval_loads_the_two_worker_checkpoint(two_worker_run, tiny_data):
    from detection.cli.eval import main as eval_main

    result = two_worker_run / "eval.json"
    assert eval_main(["--checkpoint", str(two_worker_run / "best.pt"), "--annotations",
                      str(tiny_data / "annotations.json"), "--images", str(tiny_data / "images"),
                      "--out", str(result)]) == 0
    assert "bbox_mAP" in json.loads(result.read_text())


def test_resume_continues_from_the_last_epoch(two_worker_run, tiny_data, capsys):
    out = two_worker_run
    first = weights(out / "last.pt")["model"]
    assert train_main([str(DEMO), *overrides(out, tiny_data, **{"train.epochs": "2"}), "--resume",
                       "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["epochs"] == 2 and summary["steps"] == 4 and "bbox_mAP" in summary
    records = read_jsonl(out / "metrics.jsonl")
    assert [(r["type"], r.get("step", r["epoch"])) for r in records] == [
        ("train", 1), ("train", 2), ("epoch", 1), ("train", 3), ("train", 4), ("epoch", 2)]
    last = weights(out / "last.pt")
    assert last["epoch"] == 2 and last["step"] == 4
    assert any(not torch.equal(first[k], last["model"][k]) for k in first if first[k].is_floating_point())


def test_bad_trainer_settings_are_clear_errors(tiny_data, tmp_path):
    with pytest.raises(UserError, match="trainer.num_workers"):
        load_config(DEMO, ["trainer.num_workers=-1"])
    with pytest.raises(UserError, match="global batch.*trainer.num_workers=2"):
        load_config(DEMO, ["trainer.num_workers=2", "train.batch_size=5"])
    with pytest.raises(UserError, match="trainer.max_failures"):
        load_config(DEMO, ["trainer.max_failures=-1"])
    if not torch.cuda.is_available():
        from detection.engine.distributed import fit_on_ray

        cfg = load_config(DEMO, overrides(tmp_path / "gpu", tiny_data, **{"trainer.use_gpu": "true"}))
        with pytest.raises(UserError, match="use_gpu=true needs one CUDA device per worker"):
            fit_on_ray(cfg, build_task)
        assert not (tmp_path / "gpu").exists()  # stopped before Ray or any file


def test_a_worker_user_error_comes_back_as_that_error(tiny_data, tmp_path, ray_here, capsys):
    """A diverging loss on a worker stops the run with the trainer's own message and exit status 1 (the worker's
    traceback is in Ray's log lines above it; the driver's last word is the one-line error)."""
    bad = {"train.lr": "1000000.0", "train.clip_grad_norm": "0", "train.warmup_epochs": "0", "train.epochs": "3"}
    assert train_main([str(DEMO), *overrides(tmp_path / "nan", tiny_data, **bad), "--no-progress"]) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("error: loss is") and "lower train.lr" in last


def test_a_two_worker_run_resumes_in_process(two_worker_run, tiny_data, tmp_path):
    """The checkpoint is single-process training's: --resume without Ray Train continues it (a copy of the run)."""
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(two_worker_run, out)
    before = weights(out / "last.pt")
    more = overrides(out, tiny_data, **{"train.epochs": str(before["epoch"] + 1), "trainer.num_workers": "0"})
    assert train_main([str(DEMO), *more, "--resume", "--no-progress"]) == 0
    after = weights(out / "last.pt")
    assert after["epoch"] == before["epoch"] + 1 and after["step"] == before["step"] + 2
    assert after["config"]["trainer"]["num_workers"] == 0
