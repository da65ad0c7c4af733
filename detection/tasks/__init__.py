"""What the one trainer trains: a Task supplies data, model, loss call, evaluation and the best-checkpoint metric.

`build_task(cfg)` picks it by the family `model.name` names (its `task`): detectors, the SiamFC tracker, or the re-id embedder.
"""
from __future__ import annotations

from detection.config import Config, family_of
from detection.tasks.base import Task
from detection.tasks.detection import DetectionTask
from detection.tasks.reid import ReIDTask
from detection.tasks.siamfc import SiamFCTask

TASKS: dict[str, type] = {"detection": DetectionTask, "siamfc": SiamFCTask, "reid": ReIDTask}


def build_task(cfg: Config) -> Task:
    """The task that trains `cfg.model` (by its family's `task`)."""
    return TASKS[family_of(cfg.model.name).task](cfg)


__all__ = ["Task", "DetectionTask", "SiamFCTask", "ReIDTask", "TASKS", "build_task"]
