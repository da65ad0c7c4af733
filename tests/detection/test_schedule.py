"""The lr schedule: warmup precedes the schedule, is counted in epochs and capped, so short runs reach the peak."""
from __future__ import annotations

import pytest
from tiny_run import tiny_config

from datasets.synthetic.shapes import make_shapes
from detection.engine.schedule import WARMUP_CAP, lr_multiplier, warmup_steps
from detection.tasks import build_trainer


def curve(total: int, warmup: int, **kwargs) -> list[float]:
    return [lr_multiplier(step, total, warmup, **kwargs) for step in range(total)]


def test_short_run_reaches_the_configured_lr_early():
    """The issue's run: 57 tiles at batch 8 (8 steps an epoch), 40 epochs, 320 steps. Under the old
    multiplied warmup of 200 iterations the peak was 0.42, at epoch 17."""
    iters, total = 8, 320
    warmup = warmup_steps(1.0, iters, total)
    lrs = curve(total, warmup)
    assert warmup == 8
    assert max(lrs) == pytest.approx(1.0)
    assert lrs.index(max(lrs)) == warmup  # the peak at the end of the first epoch
    assert lrs[0] == pytest.approx(0.001)
    assert all(a >= b for a, b in zip(lrs[warmup:], lrs[warmup + 1:]))  # cosine only decays after warmup
    assert lrs[-1] == pytest.approx(0.01, abs=1e-3)


def test_warmup_is_capped_to_a_small_part_of_the_run():
    assert warmup_steps(5.0, 8, 80) == int(WARMUP_CAP * 80) == 8
    assert warmup_steps(0.5, 100, 10_000) == 50
    assert warmup_steps(0, 8, 320) == 0
    assert curve(10, 0)[0] == pytest.approx(1.0)  # no warmup: the peak at step 0


def test_step_schedule_after_warmup():
    lrs = curve(100, 5, scheduler="step", gamma=0.1, milestones=[0.5, 0.9])
    assert lrs[5] == 1.0 and lrs[49] == 1.0
    assert lrs[50] == pytest.approx(0.1) and lrs[95] == pytest.approx(0.01)


def test_trainer_lr_reaches_its_peak_in_a_few_hundred_steps(tmp_path):
    """The trainer applies the schedule: its factor over the planned run (57 images, batch 8, 40 epochs)."""
    make_shapes(tmp_path / "data", 57, seed=1, image_size=64, min_size=12, max_size=32)
    cfg = tiny_config(tmp_path / "run", tmp_path / "data", **{"train.epochs": "40", "train.batch_size": "8",
                                                              "train.warmup_epochs": "1"})
    trainer = build_trainer(cfg, progress=False)
    factors = [trainer.lr_factor(step) for step in range(trainer.epochs * trainer.iters_per_epoch)]
    assert len(factors) == 320 and factors[8] == pytest.approx(1.0)
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(cfg.train.lr * 0.001)
