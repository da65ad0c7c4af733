"""The proposal cache: computed once (in parallel processes), reused by content, keyed by the settings, safe
inside a torch DataLoader worker."""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from datasets.core.errors import UserError
from datasets.synthetic.shapes import make_shapes
from detection.proposals import ProposalConfig, build_proposer
from detection.proposals.cache import ProposalCache

FAST = ProposalConfig(method="selective_search", mode="single", max_side=128)


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("cache_shapes")
    make_shapes(root, 4, seed=21, image_size=64, min_size=12, max_size=30)
    return sorted((root / "images").iterdir())


def rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def test_ensure_computes_in_processes_once_then_reuses(tmp_path, images):
    cache = ProposalCache(tmp_path, FAST)
    assert cache.ensure(images, workers=2, progress=False) == len(images)
    stored = sorted(p.name for p in (tmp_path / FAST.key()).iterdir())
    assert stored == sorted(f"{hashlib.sha1(p.read_bytes()).hexdigest()}.npy" for p in images)
    assert cache.ensure(images, workers=2, progress=False) == 0
    assert cache.computed == len(images) and cache.reused == len(images)
    proposer = build_proposer(FAST)
    for path in images:
        boxes = cache.get(path)
        assert boxes.dtype == np.float32 and boxes.shape[1] == 4
        np.testing.assert_array_equal(boxes, proposer(rgb(path)))
    assert cache.computed == len(images), "get() found them all"


def test_a_renamed_copy_hits_the_cache_and_a_new_cache_object_reuses_the_files(tmp_path, images):
    ProposalCache(tmp_path / "c", FAST).ensure(images[:1], workers=1, progress=False)
    copy = tmp_path / "renamed.png"
    shutil.copyfile(images[0], copy)
    again = ProposalCache(tmp_path / "c", FAST)
    assert again.ensure([copy], progress=False) == 0
    again.get(copy)
    assert again.computed == 0 and again.reused == 2


def test_settings_that_change_the_boxes_get_their_own_folder(tmp_path, images):
    ProposalCache(tmp_path, FAST).ensure(images[:1], workers=1, progress=False)
    fewer = ProposalConfig(**{**FAST.__dict__, "top_n_test": 10})  # how many a model uses: same proposals
    assert ProposalCache(tmp_path, fewer).ensure(images[:1], workers=1, progress=False) == 0
    other = ProposalConfig(**{**FAST.__dict__, "min_size": 8})
    assert ProposalCache(tmp_path, other).ensure(images[:1], workers=1, progress=False) == 1
    assert len(list(tmp_path.iterdir())) == 2


def test_a_damaged_cache_file_is_computed_again(tmp_path, images):
    cache = ProposalCache(tmp_path, FAST)
    good = cache.get(images[0])
    cache.path_for(images[0]).write_bytes(b"not numpy")
    np.testing.assert_array_equal(cache.get(images[0]), good)
    assert cache.computed == 2


def test_missing_or_unreadable_image_is_a_user_error_naming_it(tmp_path, images):
    cache = ProposalCache(tmp_path / "c", FAST)
    with pytest.raises(UserError, match="none.png: image file not found"):
        cache.get(tmp_path / "none.png")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(UserError, match="broken.png: not a readable image"):
        cache.ensure([images[0], broken, images[1]], workers=2, progress=False)  # raised through the pool


class CachedProposals(torch.utils.data.Dataset):
    """Item i: fill a cache of its own with every image (ensure asks for 2 processes; inside a DataLoader worker,
    a daemonic process, it must work without them), then answer image i's proposals and how many were computed."""

    def __init__(self, root: Path, paths: list[Path]) -> None:
        self.root, self.paths = root, paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor]:
        cache = ProposalCache(self.root / str(index), FAST)
        computed = cache.ensure(self.paths, workers=2, progress=False)
        return computed, torch.from_numpy(cache.get(self.paths[index]))


def test_safe_inside_a_dataloader_worker(tmp_path, images):
    loader = torch.utils.data.DataLoader(CachedProposals(tmp_path, images[:2]), batch_size=None, num_workers=2)
    proposer = build_proposer(FAST)
    for (computed, boxes), path in zip(loader, images[:2]):
        assert computed == 2
        np.testing.assert_array_equal(boxes.numpy(), proposer(rgb(path)))
