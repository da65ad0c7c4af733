"""Trainer: a few steps on tiny data, exact resume, NaN loss stops with a clear error, logs and checkpoints."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from datasets.core.errors import UserError
from detection.engine.trainer import Trainer
from detection.tasks import build_trainer
from tiny_run import FAST_64, shapes_64, tiny_config

# 8 images of 64 px, batch 4: two steps per epoch, no evaluation unless asked for.
FAST = {**FAST_64, "data.val.annotations": ""}


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    return shapes_64(tmp_path_factory.mktemp("tiny64"))


def config(out: Path, data: Path, **overrides: str):
    return tiny_config(out, data, **{**FAST, **overrides})


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def weights(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key].float(), b[key].float(), atol=1e-6), key


def test_train_few_steps_writes_everything(tmp_path, tiny_data):
    cfg = config(tmp_path / "run", tiny_data, **{"train.epochs": "2", "data.val.annotations":
                                                   str(tiny_data / "annotations.json")})
    trainer = build_trainer(cfg, progress=False)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    metrics = trainer.fit()
    out = tmp_path / "run"
    assert {"config.yaml", "metrics.jsonl", "last.pt", "best.pt"} <= {p.name for p in out.iterdir()}
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    assert trainer.epoch == 2 and trainer.step == 4
    # the weights moved
    after = trainer.model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before if before[k].is_floating_point())
    # evaluation at the last epoch gives the 12 COCO numbers
    assert len(metrics) == 12 and "bbox_mAP" in metrics
    records = read_jsonl(out / "metrics.jsonl")  # every line is JSON
    train = [r for r in records if r["type"] == "train"]
    epochs = [r for r in records if r["type"] == "epoch"]
    assert [r["step"] for r in train] == [1, 2, 3, 4]  # log_every=1
    assert all(r["loss"] == pytest.approx(sum(r[k] for k in r if k.startswith("loss_")), abs=1e-3) for r in train)
    assert all(r["lr"] > 0 for r in train)
    assert [r["epoch"] for r in epochs] == [1, 2]
    assert "bbox_mAP" in epochs[-1] and "bbox_mAP" not in epochs[0]  # eval_every=0: only at the end
    # checkpoints: plain data; last.pt carries training state, best.pt does not
    last, best = weights(out / "last.pt"), weights(out / "best.pt")
    assert last["epoch"] == 2 and last["step"] == 4 and "optimizer" in last and "scheduler" in last
    assert "optimizer" not in best and best["metrics"] == metrics
    assert_same_weights(last["model"], after)
    from detection.config import load_config
    assert load_config(out / "config.yaml") == cfg


def run_killed_after_first_epoch(cfg, monkeypatch) -> None:
    """Train with `cfg` but die right after epoch 1's checkpoint is written (like a kill -9)."""
    class Killed(Exception):
        pass

    original = Trainer.save

    def save_then_die(self, metrics):
        original(self, metrics)
        raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "save", save_then_die)
        with pytest.raises(Killed):
            build_trainer(cfg, progress=False).fit()


def test_resume_after_kill_equals_straight_run(tmp_path, tiny_data, monkeypatch):
    straight = build_trainer(config(tmp_path / "a", tiny_data, **{"train.epochs": "2"}), progress=False)
    straight.fit()

    cfg_b = config(tmp_path / "b", tiny_data, **{"train.epochs": "2"})
    run_killed_after_first_epoch(cfg_b, monkeypatch)
    assert weights(tmp_path / "b" / "last.pt")["epoch"] == 1
    resumed = build_trainer(cfg_b, resume=True, progress=False)
    assert resumed.epoch == 1 and resumed.step == 2
    resumed.fit()

    a, b = weights(tmp_path / "a" / "last.pt"), weights(tmp_path / "b" / "last.pt")
    assert a["step"] == b["step"] == 4 and a["epoch"] == b["epoch"] == 2
    assert_same_weights(a["model"], b["model"])
    lr_a = [r["lr"] for r in read_jsonl(tmp_path / "a" / "metrics.jsonl") if r["type"] == "train"]
    lr_b = [r["lr"] for r in read_jsonl(tmp_path / "b" / "metrics.jsonl") if r["type"] == "train"]
    assert lr_b == pytest.approx(lr_a)  # the schedule continued where it stopped


def test_resume_extending_epochs_equals_straight_run(tmp_path, tiny_data):
    """1 epoch, then resume with train.epochs=2: same as 2 epochs straight when the schedule does not
    depend on the planned length (step schedule with no milestone reached; warmup only)."""
    flat = {"train.scheduler": "step", "train.milestones": "[10.0]"}
    build_trainer(config(tmp_path / "a", tiny_data, **{"train.epochs": "2", **flat}), progress=False).fit()
    build_trainer(config(tmp_path / "b", tiny_data, **{"train.epochs": "1", **flat}), progress=False).fit()
    resumed = build_trainer(config(tmp_path / "b", tiny_data, **{"train.epochs": "2", **flat}), resume=True,
                      progress=False)
    assert resumed.epochs == 2
    resumed.fit()
    a, b = weights(tmp_path / "a" / "last.pt"), weights(tmp_path / "b" / "last.pt")
    assert a["step"] == b["step"] == 4
    assert_same_weights(a["model"], b["model"])


def test_resume_without_last_checkpoint_is_user_error(tmp_path, tiny_data):
    with pytest.raises(UserError, match="last.pt"):
        build_trainer(config(tmp_path / "none", tiny_data), resume=True, progress=False)


def test_nan_loss_stops_with_user_error(tmp_path, tiny_data):
    trainer = build_trainer(config(tmp_path / "nan", tiny_data, **{"train.epochs": "2"}), progress=False)

    def nan_forward(images, targets=None, proposals=None):  # the contract's signature
        zero = sum(p.sum() for p in trainer.model.parameters()) * 0
        return {"loss_classifier": zero + float("nan"), "loss_box_reg": zero + 1.0}

    trainer.model.forward = nan_forward
    with pytest.raises(UserError) as info:
        trainer.fit()
    message = str(info.value)
    assert "loss" in message and "nan" in message.lower() and "loss_classifier" in message
    assert "\n" not in message
    assert not (tmp_path / "nan" / "last.pt").exists()  # nothing saved from a broken step


def test_huge_learning_rate_stops_with_user_error(tmp_path, tiny_data):
    """A real divergence, not a patched one: lr=1e6 without gradient clipping."""
    cfg = config(tmp_path / "lr", tiny_data, **{"train.epochs": "3", "train.lr": "1000000.0",
                                                "train.clip_grad_norm": "0", "train.warmup_epochs": "0"})
    with pytest.raises(UserError, match="loss"):
        build_trainer(cfg, progress=False).fit()


def test_time_budget_stops_early_but_evaluates_and_saves(tmp_path, tiny_data):
    cfg = config(tmp_path / "t", tiny_data, **{"train.epochs": "50", "train.max_minutes": "0.00001",
                                               "data.val.annotations": str(tiny_data / "annotations.json")})
    trainer = build_trainer(cfg, progress=False)
    metrics = trainer.fit()
    assert trainer.epoch == 1 and trainer.epochs == 1
    assert "bbox_mAP" in metrics
    assert (tmp_path / "t" / "best.pt").exists() and weights(tmp_path / "t" / "last.pt")["epoch"] == 1


def test_time_budget_plans_from_the_epochs_after_the_first(tmp_path, tiny_data):
    """A slow first epoch (loader start, kernels) no longer fixes the plan: after it the run plans 3 epochs of a
    60 s budget, after a 5 s second epoch it plans again and fills the budget, never past train.epochs."""
    cfg = config(tmp_path / "t", tiny_data, **{"train.epochs": "50", "train.max_minutes": "1"})
    trainer = build_trainer(cfg, progress=False)
    for seconds, planned in ((20.0, 3), (5.0, 9), (5.0, 9)):
        trainer.epoch += 1
        trainer.seconds += seconds
        trainer.epoch_seconds.append(seconds)
        trainer.fit_time_budget()
        assert trainer.epochs == planned
    trainer.cfg.train.epochs = 6
    trainer.fit_time_budget()
    assert trainer.epochs == 6


def test_fresh_run_into_an_existing_folder_starts_a_new_log(tmp_path, tiny_data):
    """Defect 3: metrics.jsonl was appended to by every run into the same output_dir."""
    for _ in range(2):
        build_trainer(config(tmp_path / "same", tiny_data), progress=False).fit()
    records = read_jsonl(tmp_path / "same" / "metrics.jsonl")
    assert [r["epoch"] for r in records if r["type"] == "epoch"] == [1]
    assert [r["step"] for r in records if r["type"] == "train"] == [1, 2]


def test_resume_after_a_kill_mid_epoch_repeats_no_record(tmp_path, tiny_data, monkeypatch):
    """Defect 3: a resume after a kill mid-epoch repeated that epoch's train records."""
    class Killed(Exception):
        pass

    cfg = config(tmp_path / "mid", tiny_data, **{"train.epochs": "2"})
    original = Trainer.log

    def log_then_die(self, record):
        original(self, record)
        if record["type"] == "train" and record["step"] == 3:  # the first step of epoch 2
            raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "log", log_then_die)
        with pytest.raises(Killed):
            build_trainer(cfg, progress=False).fit()
    build_trainer(cfg, resume=True, progress=False).fit()
    records = read_jsonl(tmp_path / "mid" / "metrics.jsonl")
    assert [(r["type"], r.get("step", r["epoch"])) for r in records] == [
        ("train", 1), ("train", 2), ("epoch", 1), ("train", 3), ("train", 4), ("epoch", 2)]


def test_loader_workers_start_under_spawn_and_follow_the_seed(tiny_data):
    """Defect 4: worker_init_fn was a closure, which spawn and forkserver cannot pickle."""
    import pickle

    from detection.data.coco import CocoDetection
    from detection.data.transforms import build_transform
    from detection.engine.trainer import make_loader

    cfg = config(Path("unused"), tiny_data)
    dataset = CocoDetection(tiny_data / "annotations.json", tiny_data / "images",
                            build_transform(64, True, cfg.data.augment, seed=0))
    batches = []
    for _ in range(2):
        loader = make_loader(dataset, 4, True, seed=7, num_workers=1, context="spawn")
        pickle.dumps(loader.worker_init_fn)
        batches.append(next(iter(loader)))
    (a, ta), (b, tb) = batches
    assert torch.equal(a, b)  # same seed, same order and augmentation, in a fresh spawned worker
    assert all(torch.equal(x["boxes"], y["boxes"]) for x, y in zip(ta, tb))


def test_written_files_honour_the_umask(tmp_path, tiny_data):
    """Defect 6: every file the project wrote had mode 0600 (mkstemp's), unreadable to a teammate or service."""
    import os
    import stat

    old = os.umask(0o022)
    try:
        build_trainer(config(tmp_path / "modes", tiny_data), progress=False).fit()
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "modes").iterdir()}
    assert modes == {"config.yaml": 0o644, "metrics.jsonl": 0o644, "last.pt": 0o644, "best.pt": 0o644,
                     "results.png": 0o644}


def test_ema_follows_the_ramped_formula():
    from detection.engine.ema import build_ema

    model = torch.nn.Sequential(torch.nn.Linear(2, 1), torch.nn.BatchNorm1d(1))
    ema = build_ema(model, decay=0.5, warmup=1)
    with torch.no_grad():
        model[0].weight.fill_(1.0)
        ema.update_parameters(model)  # the first update copies
        model[0].weight.fill_(3.0)
        ema.update_parameters(model)  # decay_t = 0.5 * (1 - e^-2)
    rate = 0.5 * (1 - math.exp(-2))
    assert ema.module[0].weight.flatten().tolist() == pytest.approx([rate * 1 + (1 - rate) * 3] * 2)
    assert ema.n_averaged.item() == 2


def test_ema_weights_are_evaluated_saved_and_resumed_exactly(tmp_path, tiny_data, monkeypatch):
    ema = {"train.ema": "0.9", "train.ema_warmup": "2", "train.epochs": "2"}
    straight = build_trainer(config(tmp_path / "a", tiny_data, **ema), progress=False)
    straight.fit()
    last = weights(tmp_path / "a" / "last.pt")
    assert last["ema_updates"] == 4
    assert_same_weights(last["model"], straight.ema.module.state_dict())
    assert any(not torch.equal(last["model"][k], last["raw_model"][k]) for k in last["model"]
               if last["model"][k].is_floating_point())
    assert_same_weights(weights(tmp_path / "a" / "best.pt")["model"], last["model"])  # what eval/serve load

    cfg_b = config(tmp_path / "b", tiny_data, **ema)
    run_killed_after_first_epoch(cfg_b, monkeypatch)
    build_trainer(cfg_b, resume=True, progress=False).fit()
    b = weights(tmp_path / "b" / "last.pt")
    assert_same_weights(last["model"], b["model"])
    assert_same_weights(last["raw_model"], b["raw_model"])


def test_multi_scale_sizes_are_multiples_of_32_in_range_and_seeded():
    from detection.data.multiscale import batch_size_for, rescale_batch

    sizes = [batch_size_for(step, 0, 320, 0.5, 1.5) for step in range(200)]
    assert set(sizes) <= set(range(160, 481, 32)) and len(set(sizes)) > 5
    assert sizes == [batch_size_for(step, 0, 320, 0.5, 1.5) for step in range(200)]
    images = torch.rand(2, 3, 64, 64)
    targets = [{"boxes": torch.tensor([[8.0, 16.0, 32.0, 48.0]]), "labels": torch.tensor([1])}] * 2
    bigger, scaled = rescale_batch(images, targets, 96)
    assert bigger.shape == (2, 3, 96, 96) and scaled[0]["boxes"].tolist() == [[12.0, 24.0, 48.0, 72.0]]


@pytest.mark.parametrize("family", ["faster_rcnn", "yolo"])
def test_multi_scale_training_feeds_other_sizes_to_the_model(tmp_path, tiny_data, family):
    """Faster R-CNN's own transform would resize back to input_size: it must take the batch's size."""
    extra = {"data.multi_scale": "[0.5, 1.5]"}
    if family == "yolo":
        extra.update({"model.name": "yolo", "model.faster_rcnn": "null", "model.neck": "pan"})
    trainer = build_trainer(config(tmp_path / family, tiny_data, **extra), progress=False)
    seen = []
    body = trainer.model.model.backbone if family == "faster_rcnn" else trainer.model.body
    body.register_forward_pre_hook(lambda module, args: seen.append(args[0].shape[-1]))
    trainer.fit()
    assert set(seen) - {64}, seen  # sizes other than input_size 64 reached the backbone
    assert all(size % 32 == 0 for size in seen)
