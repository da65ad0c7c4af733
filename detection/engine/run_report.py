"""What a training run shows besides metrics.jsonl: the evaluation pictures at each evaluation, results.png
after each epoch (train.plots), TensorBoard scalars (train.tensorboard). The trainer calls it; it knows no family."""
from __future__ import annotations

from pathlib import Path

from pycocotools.coco import COCO

from detection.engine.report import Evaluation, evaluate_results
from detection.engine.tensorboard import TensorBoardLog


class RunReport:
    """Pictures and TensorBoard of the run in `out`; `record` sees every metrics.jsonl record once written."""

    def __init__(self, out: str | Path, plots: bool = True, tensorboard: bool = False) -> None:
        self.out, self.plots = Path(out), plots
        self.board = TensorBoardLog(self.out / "tb") if tensorboard else None  # UserError now if not installed

    def evaluation(self, coco: COCO, images_dir: str | Path, results: list[dict]) -> Evaluation:
        """Score the results; with plots, draw pr_curves.png, confusion_matrix.png and val_predictions.jpg."""
        return evaluate_results(coco, results, images_dir, self.out if self.plots else None)

    def record(self, record: dict) -> None:
        """After a record reached metrics.jsonl: its scalars to TensorBoard; results.png redrawn after an epoch."""
        if self.board is not None:
            self.board.add(record)
        if self.plots and record.get("type") == "epoch":
            from detection.viz.curves import write_results_png

            write_results_png(self.out)

    def close(self) -> None:
        if self.board is not None:
            self.board.close()
