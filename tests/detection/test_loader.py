"""Data loading: the decoded-image caches give the samples a decode gives, the disk cache is reused and follows
changed files; batches are pinned only for CUDA; persistent workers give each epoch the batches fresh ones did."""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import detection.data.image_cache as image_cache
from datasets.core.errors import UserError
from datasets.synthetic.shapes import make_shapes
from detection.config import AugmentConfig
from detection.data.coco import CocoDetection
from detection.data.epoch_seed import EpochSeeded
from detection.data.transforms import build_transform
from detection.engine.trainer import make_loader, pins_memory, restart
from detection.tasks import build_trainer
from tiny_run import tiny_config

AUG = AugmentConfig(hflip=0.5, scale_min=0.8, scale_max=1.2, color=0.3, mosaic=0.5)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """8 shapes images of 64 px, as JPEG (a lossy decode is what a cache must reproduce bit for bit)."""
    root = tmp_path_factory.mktemp("loader64")
    make_shapes(root, 8, seed=2, image_size=64, min_size=12, max_size=32, image_format="jpg")
    return root


def dataset(root: Path, **cache) -> CocoDetection:
    return CocoDetection(root / "annotations.json", root / "images", build_transform(64, True, AUG, seed=4),
                         mosaic=AUG.mosaic, **cache)


def items(ds: CocoDetection, seed: int = 9) -> list:
    np.random.seed(seed)  # mosaic draws from numpy's global RNG
    ds.transform.set_random_seed(seed)
    return [ds[i] for i in range(len(ds))]


def assert_same_items(a: list, b: list) -> None:
    assert len(a) == len(b)
    for (image_a, target_a), (image_b, target_b) in zip(a, b):
        assert torch.equal(image_a, image_b)
        assert torch.equal(target_a["boxes"], target_b["boxes"]) and torch.equal(target_a["labels"], target_b["labels"])


def count_decodes(monkeypatch) -> list:
    calls = []
    decode = image_cache.read_rgb
    monkeypatch.setattr(image_cache, "read_rgb", lambda path: calls.append(Path(path).name) or decode(path))
    return calls


def test_ram_and_disk_caches_give_the_samples_a_decode_gives(data, tmp_path, monkeypatch):
    plain = items(dataset(data))
    decodes = count_decodes(monkeypatch)
    ram = dataset(data, cache_images="ram")
    assert len(decodes) == 8 and ram.images.nbytes == 8 * 64 * 64 * 3
    assert_same_items(items(ram), plain)
    assert len(decodes) == 8  # all from memory, mosaic's extra images too
    disk = dataset(data, cache_images="disk", cache_dir=tmp_path / "cache")
    assert_same_items(items(disk), plain)  # first pass: decoded and written
    assert_same_items(items(disk), plain)  # second pass: read back memory-mapped
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 8
    assert not list((tmp_path / "cache").glob(".*"))  # no temporary files left behind


def test_disk_cache_is_reused_and_follows_changed_and_renamed_files(data, tmp_path, monkeypatch):
    root = tmp_path / "copy"
    (root / "images").mkdir(parents=True)
    for path in (data / "images").iterdir():
        (root / "images" / path.name).write_bytes(path.read_bytes())
    (root / "annotations.json").write_text((data / "annotations.json").read_text())
    cache = image_cache.DiskCache(tmp_path / "cache")
    decodes = count_decodes(monkeypatch)
    first = root / "images" / "000000.jpg"
    image = cache.read(first)
    assert np.array_equal(cache.read(first), image) and decodes == ["000000.jpg"]  # reused: no second decode
    assert isinstance(cache.read(first), np.memmap)
    changed = cv2.imread(str(root / "images" / "000001.jpg"))
    cv2.imwrite(str(first), changed)  # new content (and mtime) under the same name
    os.utime(first, ns=(first.stat().st_atime_ns, first.stat().st_mtime_ns + 10**9))
    assert np.array_equal(cache.read(first), image_cache.read_rgb(first))
    assert not np.array_equal(cache.read(first), image)
    renamed = first.rename(root / "images" / "moved.jpg")
    assert np.array_equal(cache.read(renamed), image_cache.read_rgb(renamed))
    assert decodes.count("moved.jpg") == 2  # once by the cache, once by the check above
    entry = cache.entry(renamed)
    entry.write_bytes(b"torn")  # a crash mid-write elsewhere: decoded and written again
    assert np.array_equal(cache.read(renamed), image_cache.read_rgb(renamed))


def test_ram_cache_refuses_more_than_the_memory_allows(data, monkeypatch):
    monkeypatch.setattr(image_cache, "available_memory", lambda: 100_000)  # 8 images need 98 kB: above half
    with pytest.raises(UserError, match="data.cache_images=ram: 8 images need about .* use data.cache_images=disk"):
        dataset(data, cache_images="ram")
    with pytest.raises(UserError, match="'data.cache_images': 'rma' is not one of '', ram, disk"):
        dataset(data, cache_images="rma")


def test_memory_is_pinned_for_cuda_only(data):
    ds = dataset(data)
    assert pins_memory("cuda") and pins_memory(torch.device("cuda:1"))
    assert not pins_memory("cpu") and not pins_memory(None)
    assert make_loader(ds, 4, True, seed=0, num_workers=0, device="cuda").pin_memory
    assert not make_loader(ds, 4, True, seed=0, num_workers=0, device=torch.device("cpu")).pin_memory


@pytest.mark.parametrize("workers", [0, 2])
def test_a_kept_loader_gives_each_epoch_the_batches_a_fresh_one_gives(data, workers):
    """Epochs 0..2 from one persistent loader (restarted each epoch, as the Trainer does) equal those of a fresh
    make_loader per epoch, the loader the Trainer made before: same order, same augmentation in every worker."""
    ds = dataset(data)
    seeded = EpochSeeded(ds)
    kept = make_loader(seeded, 2, True, seed=0, num_workers=workers, persistent=True)
    assert kept.persistent_workers == (workers > 0)
    for epoch in range(3):
        if epoch == 0:
            seeded.set_seed(epoch)
        else:
            restart(kept, epoch)
        np.random.seed(epoch)  # as Trainer.train_one_epoch does in the main process
        ds.transform.set_random_seed(epoch)
        got = list(kept)
        np.random.seed(epoch)
        ds.transform.set_random_seed(epoch)
        fresh = list(make_loader(ds, 2, True, seed=epoch, num_workers=workers))
        assert [t["image_id"] for _, ts in got for t in ts] == [t["image_id"] for _, ts in fresh for t in ts]
        for (images, targets), (images_f, targets_f) in zip(got, fresh):
            assert torch.equal(images, images_f)
            assert all(torch.equal(a["boxes"], b["boxes"]) for a, b in zip(targets, targets_f))


def test_training_with_workers_and_a_ram_cache_resumes_exactly(tmp_path, data):
    """Two epochs with 2 persistent workers and cached images, against one epoch plus a resume (new workers)."""
    fast = {"data.input_size": "64", "train.batch_size": "4", "model.faster_rcnn.anchor_sizes": "[8,16,32,64]",
            "model.faster_rcnn.rpn_pre_nms_top_n_train": "100", "model.faster_rcnn.rpn_post_nms_top_n_train": "50",
            "data.val.annotations": "", "train.warmup_epochs": "0", "train.plots": "false",
            "data.num_workers": "2", "data.cache_images": "ram", "data.augment.mosaic": "0.5",
            "train.scheduler": "step", "train.milestones": "[10.0]"}  # a schedule that ignores the planned length
    straight = build_trainer(tiny_config(tmp_path / "a", data, **{**fast, "train.epochs": "2"}), progress=False)
    straight.fit()
    build_trainer(tiny_config(tmp_path / "b", data, **{**fast, "train.epochs": "1"}), progress=False).fit()
    resumed = build_trainer(tiny_config(tmp_path / "b", data, **{**fast, "train.epochs": "2"}), resume=True, progress=False)
    resumed.fit()
    assert resumed.kept_loader is None  # the workers were stopped at the end
    for key, value in straight.model.state_dict().items():
        assert torch.allclose(value.float(), resumed.model.state_dict()[key].float(), atol=1e-6), key
