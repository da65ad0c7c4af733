"""Training curves read back from metrics.jsonl: every loss term, the learning rate and val mAP (a tracker's val
success AUC and precision@20) per epoch.

One run makes a run's results.png; several make the comparison figure of `python -m detection.plot`.
"""
from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from datasets.core.errors import UserError
from datasets.view.plot import pyplot, save_figure

VAL_KEYS = ("bbox_mAP", "bbox_mAP_50", "success_auc", "precision_20")  # detectors, then the SiamFC tracker
MIN_PANEL = (4.0, 3.0)  # inches per panel at 100 dpi: 400 x 300 pixels


@dataclass
class Curves:
    """One run's series: name -> (epochs, values), one point per epoch that logged the name."""

    label: str
    series: dict[str, tuple[list[int], list[float]]] = field(default_factory=dict)

    @property
    def epochs(self) -> list[int]:
        return self.series["loss"][0] if "loss" in self.series else []


def read_records(path: Path) -> list[dict]:
    """The JSON records of a metrics.jsonl; a torn line (a run killed mid-write) is skipped."""
    records = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def epoch_values(epoch: dict, steps: list[dict]) -> dict[str, float]:
    """What one epoch plots: its losses and lr (the epoch record's own, else the mean / last of the step
    records logged during it, as runs written before the epoch record carried them) and its val mAP."""
    names = [k for k in epoch if k == "loss" or k.startswith("loss_")]
    names += [k for s in steps for k in s if k.startswith("loss_") and k not in names]
    values = {}
    for name in names:
        logged = [s[name] for s in steps if name in s]
        values[name] = epoch[name] if name in epoch else sum(logged) / len(logged)
    lr = epoch.get("lr", steps[-1].get("lr") if steps else None)
    if lr is not None:
        values["lr"] = lr
    values.update({k: epoch[k] for k in VAL_KEYS if k in epoch})
    return {k: float(v) for k, v in values.items() if v is not None and math.isfinite(float(v))}


def curves_from_records(records: list[dict], label: str) -> Curves:
    """Curves of the epoch records (the last record of an epoch wins), in epoch order."""
    epochs, steps = {}, defaultdict(list)
    for record in records:
        if record.get("type") == "epoch":
            epochs[record["epoch"]] = record
        elif record.get("type") == "train":
            steps[record.get("epoch")].append(record)
    curves = Curves(label)
    for number in sorted(epochs):
        for name, value in epoch_values(epochs[number], steps[number]).items():
            xs, ys = curves.series.setdefault(name, ([], []))
            xs.append(number)
            ys.append(value)
    return curves


def read_curves(run_dir: str | os.PathLike, label: str | None = None) -> Curves:
    """A run directory's curves; UserError when it has no metrics.jsonl or no finished epoch."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise UserError(f"{run_dir}: no metrics.jsonl here (is it a training run's output_dir?)")
    curves = curves_from_records(read_records(path), label or Path(run_dir).name)
    if not curves.series:
        raise UserError(f"{path}: no finished epoch logged yet")
    return curves


def panel_names(runs: list[Curves]) -> list[str]:
    """Panels in a fixed order: loss, the loss terms as they first appear, lr, then val mAP."""
    names = [n for run in runs for n in run.series]
    losses = [n for n in dict.fromkeys(names) if n.startswith("loss")]
    return sorted(losses, key=lambda n: n != "loss") + [n for n in ("lr", *VAL_KEYS) if n in names]


def curves_figure(runs: list[Curves], title: str):
    """A grid of panels (one per name) against epoch, one line per run; returns the matplotlib Figure."""
    names = panel_names(runs)
    cols = min(4, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = pyplot().subplots(rows, cols, figsize=(MIN_PANEL[0] * cols, MIN_PANEL[1] * rows + 0.6),
                                  squeeze=False)
    for ax, name in zip(axes.flat, names):
        for run in runs:
            if name in run.series:
                xs, ys = run.series[name]
                ax.plot(xs, ys, marker="o", markersize=3.5, linewidth=1.5, label=run.label)
        ax.set_title(f"val {name}" if name in VAL_KEYS else name, fontsize=11)
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        if name in VAL_KEYS or name.startswith("loss"):
            ax.set_ylim(bottom=0)
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    if len(runs) > 1:
        handles, labels = axes.flat[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="upper right", ncols=min(len(runs), 4), fontsize=10)
    fig.suptitle(title, x=0.01, ha="left", fontsize=12)
    fig.tight_layout(rect=(0, 0, 1, 0.96 if len(runs) == 1 else 0.93))
    return fig


def write_results_png(run_dir: str | os.PathLike, path: str | os.PathLike | None = None) -> Path:
    """Draw a run's results.png (or `path`) from its metrics.jsonl; returns the path written."""
    curves = read_curves(run_dir)
    target = Path(path) if path else Path(run_dir) / "results.png"
    save_figure(curves_figure([curves], f"{run_dir}: {len(curves.epochs)} epochs"), target)
    return target
