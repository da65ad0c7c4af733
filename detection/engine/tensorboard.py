"""TensorBoard scalars of a training run (train.tensorboard=true): the metrics.jsonl records, as they are logged.

train/* by iteration (losses, lr); epoch/* and val/* by epoch (mean losses, mAP, per-class AP).
"""
from __future__ import annotations

from pathlib import Path

from datasets.core.errors import UserError

MISSING = ("train.tensorboard=true needs the 'tensorboard' package, which is not installed: "
           "pip install tensorboard (or pip install -e '.[tensorboard]'), or set train.tensorboard=false")


def summary_writer_class() -> type:
    """torch.utils.tensorboard.SummaryWriter; UserError naming the package when tensorboard is missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise UserError(MISSING) from None
    return SummaryWriter


def scalars_of(record: dict) -> tuple[int, dict[str, float]]:
    """(step, {tag: value}) of one metrics.jsonl record; a record of another type gives no scalars."""
    kind = record.get("type")
    if kind == "train":
        return record["step"], {f"train/{k}": v for k, v in record.items() if k.startswith("loss") or k == "lr"}
    if kind != "epoch":
        return 0, {}
    tags = {f"epoch/{k}": v for k, v in record.items() if k.startswith("loss") or k in ("lr", "images_per_s")}
    tags.update({f"val/{k}": v for k, v in record.items() if k.startswith("bbox_") and v >= 0})  # -1: undefined
    for row in record.get("per_class", []):
        tags.update({f"val_{key}/{row['category']}": row[key] for key in ("AP", "AP50") if row.get(key) is not None})
    return record["epoch"], tags


class TensorBoardLog:
    """Writes each record's scalars into `log_dir` (created on the first record)."""

    def __init__(self, log_dir: str | Path) -> None:
        self.writer_class = summary_writer_class()  # fails before any training when the package is missing
        self.log_dir = Path(log_dir)
        self.writer = None

    def add(self, record: dict) -> None:
        step, tags = scalars_of(record)
        if not tags:
            return
        if self.writer is None:
            self.writer = self.writer_class(log_dir=str(self.log_dir))
        for tag, value in tags.items():
            self.writer.add_scalar(tag, float(value), step)
        if record.get("type") == "epoch":
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
