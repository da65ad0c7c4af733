"""Per-epoch seeding that reaches persistent DataLoader workers: the epoch's seed sits in shared memory, and a worker
that sees a new one reseeds itself as a freshly started worker of that seed would."""
from __future__ import annotations

import torch
from torch.utils.data import Dataset, get_worker_info

from detection.utils.device import seed_everything


def seed_worker_state(dataset: Dataset, worker_id: int, seed: int) -> None:
    """Seed this loader worker's RNGs and its copy of `dataset`'s augmentation from (seed, worker_id)."""
    seed_everything(seed * 1000 + worker_id)
    dataset.transform.set_random_seed(seed * 1000 + worker_id)


class EpochSeeded(Dataset):
    """`dataset` for a loader whose workers outlive an epoch (persistent_workers): after `set_seed(seed)`, each
    worker reseeds (seed_worker_state) at its first item, so the items equal those of fresh workers of `seed`.
    In the main process (num_workers=0) items pass through; the caller seeds it there."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self.state = torch.zeros(2, dtype=torch.int64).share_memory_()  # [seed, how many set_seed calls]
        self.applied = 0  # the set_seed call this process last reseeded for

    @property
    def transform(self):
        """The wrapped dataset's augmentation (what make_loader's worker_init_fn seeds)."""
        return self.dataset.transform

    def set_seed(self, seed: int) -> None:
        self.state[0] = seed
        self.state[1] += 1

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        info = get_worker_info()
        if info is not None and int(self.state[1]) != self.applied:
            seed, self.applied = (int(v) for v in self.state)
            seed_worker_state(self.dataset, info.id, seed)
        return self.dataset[index]
