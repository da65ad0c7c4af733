"""data.sampler=repeat_factor: LVIS's factors (hand-computed), rare-class images repeated by them on average over
epochs, the same seed the same epoch, shards that split one list among Ray Train workers, and the Trainer's loader
and exact resume with it."""
from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import pytest
import torch

from datasets.core.errors import UserError
from detection.config import load_config
from detection.data.repeat_factor import (RepeatFactorSampler, category_repeat_factors, epoch_length,
                                          repeat_factors)
from detection.tasks import build_task, build_trainer
from tiny_run import DEMO, FAST_64, shapes_64, tiny_config

# 10 images: category 1 in all of them, category 2 in two (f = 0.2), category 3 in one (f = 0.1)
IMAGES = [{1}] * 7 + [{1, 2}, {1, 2}, {1, 3}]


def test_factors_follow_the_lvis_formula():
    t = 0.4
    assert category_repeat_factors(IMAGES, t) == pytest.approx({1: 1.0, 2: math.sqrt(0.4 / 0.2),
                                                                3: math.sqrt(0.4 / 0.1)})
    factors = repeat_factors(IMAGES, t)
    assert factors[:7].tolist() == [1.0] * 7
    assert factors[7].item() == pytest.approx(math.sqrt(2)) and factors[9].item() == pytest.approx(2.0)
    assert repeat_factors([{1}, set()], 0.9)[1].item() == 1.0  # an image without boxes: once
    assert repeat_factors(IMAGES, 0.05).tolist() == [1.0] * 10  # every class above the threshold: no repeats


def test_rare_class_images_are_repeated_by_the_factor_over_epochs():
    factors = repeat_factors(IMAGES, 0.4)
    sampler = RepeatFactorSampler(factors)
    epochs = 4000
    counts = Counter()
    for seed in range(epochs):
        sampler.set_seed(seed)
        epoch = list(sampler)
        assert Counter(epoch)[0] == 1 and Counter(epoch)[9] == 2  # integer factors: exactly, every epoch
        assert Counter(epoch)[7] in (1, 2)
        counts.update(epoch)
    for index, factor in enumerate(factors.tolist()):
        # sqrt(2) = 1 + 0.414: the stochastic rounding repeats it a second time 41.4% of epochs (std 0.8% here)
        assert counts[index] / epochs == pytest.approx(factor, abs=0.03), index
    assert sampler.expected_length == pytest.approx(sum(factors.tolist()))


def test_the_same_seed_gives_the_same_epoch_and_another_seed_another():
    sampler = RepeatFactorSampler(repeat_factors(IMAGES, 0.4), seed=3)
    first = list(sampler)
    again = RepeatFactorSampler(repeat_factors(IMAGES, 0.4), seed=0)
    again.set_seed(3)
    assert list(again) == first and len(again) == len(first)
    sampler.set_seed(4)
    assert list(sampler) != first


@pytest.mark.parametrize("world", [2, 3])
def test_shards_split_one_epoch_list_among_the_workers(world):
    whole = RepeatFactorSampler(repeat_factors(IMAGES, 0.4))
    full = whole.epoch_indices(7)
    shards = [whole.shard(rank, world) for rank in range(world)]
    for shard in shards:
        shard.set_seed(7)
    assert len({len(s) for s in shards}) == 1  # equal shards: DDP steps stay in lockstep
    padded = full + full[: (-len(full)) % world]
    interleaved = [shards[k % world].indices[k // world] for k in range(len(padded))]
    assert interleaved == padded


def test_config_checks_the_sampler_and_threshold(tmp_path):
    with pytest.raises(UserError, match="data.sampler"):
        load_config(DEMO, ["data.sampler=lvis"])
    with pytest.raises(UserError, match="data.repeat_threshold"):
        load_config(DEMO, ["data.repeat_threshold=0"])


@pytest.fixture(scope="module")
def rare_data(tmp_path_factory) -> Path:
    """shapes_64's 8 images, every box a circle but one triangle: triangles are in 1 image of 8, circles in most."""
    root = shapes_64(tmp_path_factory.mktemp("rare"))
    path = root / "annotations.json"
    data = json.loads(path.read_text())
    keep = next(a["image_id"] for a in data["annotations"] if a["category_id"] == 3)
    for ann in data["annotations"]:
        if ann["image_id"] != keep or ann["category_id"] != 3:
            ann["category_id"] = 1
    path.write_text(json.dumps(data))
    return root


def test_trainer_loader_repeats_rare_images_and_resumes_exactly(tmp_path, rare_data):
    overrides = {**FAST_64, "data.val.annotations": "", "data.sampler": "repeat_factor",
                 "data.repeat_threshold": "0.5", "train.epochs": "2"}
    trainer = build_trainer(tiny_config(tmp_path / "a", rare_data, **overrides), progress=False)
    factors = repeat_factors([{a["category_id"] for a in trainer.train_set.coco.imgToAnns.get(i, [])}
                              for i in trainer.train_set.ids], 0.5)
    assert factors.max().item() == pytest.approx(math.sqrt(0.5 / (1 / 8)))  # = 2: the triangle image
    assert trainer.iters_per_epoch == math.ceil(epoch_length(trainer.train_set, trainer.sampler) / 4)
    rare_id = trainer.train_set.ids[int(factors.argmax())]
    order = [t["image_id"] for _, targets in trainer.train_loader(5) for t in targets]
    assert Counter(order)[rare_id] == 2 and len(order) == round(factors.sum().item()) == 9
    # a new trainer (a resumed run) draws the same epoch for the same seed, with its own loader
    other = build_trainer(tiny_config(tmp_path / "b", rare_data, **overrides), progress=False)
    assert [t["image_id"] for _, targets in other.train_loader(5) for t in targets] == order
    assert [t["image_id"] for _, targets in trainer.train_loader(6) for t in targets] != order
    trainer.fit()  # trains through the sampler; the steps follow the epoch's length
    assert trainer.step == 2 * math.ceil(9 / 4)


def test_repeat_factor_needs_a_coco_training_set():
    with pytest.raises(UserError, match="repeat_factor needs a COCO"):
        from detection.data.repeat_factor import dataset_categories

        dataset_categories(torch.utils.data.TensorDataset(torch.zeros(2)))


def test_ray_train_workers_take_equal_shards_of_the_epochs_list(tmp_path, rare_data):
    """DistributedTrainer.train_loader (what each Ray Train worker runs), in one process as rank 0 and 1 of 2: the
    two shards interleave into the list single-process training draws for that epoch's seed."""
    import torch.distributed as dist

    from detection.engine.distributed import DistributedTrainer

    overrides = {**FAST_64, "data.val.annotations": "", "data.sampler": "repeat_factor",
                 "data.repeat_threshold": "0.5", "seed": "3"}
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        cfg = tiny_config(tmp_path / "d", rare_data, **overrides)
        worker = DistributedTrainer(cfg, build_task(cfg), 0, 1, torch.device("cpu"), progress=False)
        worker.epoch, worker.world = 1, 2
        shards = []
        for rank in (0, 1):
            worker.rank = rank
            shards.append(list(worker.train_loader(4).sampler))
    finally:
        dist.destroy_process_group()
    full = worker.sampler.epoch_indices(3 + 1)  # cfg.seed + epoch on every rank
    padded = full + full[: len(full) % 2]
    assert len(shards[0]) == len(shards[1]) and [shards[k % 2][k // 2] for k in range(len(padded))] == padded
