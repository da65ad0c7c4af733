"""What the one trainer trains: a Task (detection.engine.task) supplies data, model, loss call, evaluation and the
best-checkpoint metric. `build_task(cfg)` picks it by the family `model.name` names: detector, SiamFC or re-id.
"""
from __future__ import annotations

from detection.config import Config, family_of
from detection.engine.task import Task
from detection.engine.trainer import Trainer
from detection.tasks.detection import DetectionTask
from detection.tasks.reid import ReIDTask
from detection.tasks.siamfc import SiamFCTask

TASKS: dict[str, type] = {"detection": DetectionTask, "siamfc": SiamFCTask, "reid": ReIDTask}


def build_task(cfg: Config) -> Task:
    """The task that trains `cfg.model` (by its family's `task`)."""
    return TASKS[family_of(cfg.model.name).task](cfg)


def build_trainer(cfg: Config, resume: bool = False, progress: bool = True) -> Trainer:
    """The Trainer of `cfg` with its task: Trainer(cfg, build_task(cfg), resume, progress)."""
    return Trainer(cfg, build_task(cfg), resume=resume, progress=progress)
