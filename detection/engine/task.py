"""The Task interface the trainer relies on: everything that differs between training a detector and a tracker.

detection.tasks implements it (build_task(cfg)); a batch is `(inputs, targets)` as the task's `collate` makes it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Protocol

import torch
from torch.utils.data import Dataset

if TYPE_CHECKING:
    from detection.engine.trainer import Trainer


class Task(Protocol):
    """Data, model, loss call and evaluation of one kind of model; the trainer does the rest (schedule, logs,
    checkpoints, exact resume, EMA, progress)."""

    best_metric: str  # the evaluation's number best.pt follows, higher is better (bbox_mAP, success_auc)
    report_keys: tuple[str, ...]  # the evaluation's numbers on each epoch's console line
    collate: Callable[[list], tuple[Any, list]]  # DataLoader items -> (inputs, targets)

    def datasets(self) -> tuple[Dataset, Any | None]:
        """(training set, validation set or None). The training set has `transform.set_random_seed(seed)`,
        reseeding all its augmentation (called each epoch and in each loader worker), and `categories`."""
        ...

    def build_model(self, train_set: Dataset, val_set: Any | None, device: torch.device,
                    progress: bool) -> torch.nn.Module:
        """The model to train, on `device`, its data path ready (e.g. proposals attached)."""
        ...

    def to_device(self, inputs: Any, targets: list, device: torch.device, step: int) -> tuple:
        """One batch on the device, in the form `losses` takes (outside autocast)."""
        ...

    def losses(self, model: torch.nn.Module, batch: tuple) -> dict[str, torch.Tensor]:
        """The model's scalar losses on a batch (inside autocast); training minimises their sum."""
        ...

    def evaluate(self, trainer: "Trainer") -> dict:
        """Numbers of `trainer.inference_model` on `trainer.val_set`, `best_metric` among them; may draw pictures
        into `trainer.out`; a "per_class" entry is logged but not kept as the checkpoint's metrics."""
        ...
