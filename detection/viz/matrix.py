"""The confusion matrix picture: counts beside the row-normalised matrix, classes plus background.

Rows are the ground truth, columns the prediction, as `detection.engine.confusion` counts them.
"""
from __future__ import annotations

import numpy as np

from datasets.view.plot import pyplot

MAX_ANNOTATED = 30  # above this many labels the cells are too small for numbers


def row_normalised(counts: np.ndarray) -> np.ndarray:
    """Each row divided by its sum (a row without any count stays 0)."""
    sums = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, sums, out=np.zeros(counts.shape, float), where=sums > 0)


def matrix_panel(ax, values: np.ndarray, labels: list[str], title: str, fmt: str) -> None:
    """One heat map with its numbers written in the cells (none in background x background)."""
    shown = np.ma.masked_array(values, mask=np.zeros(values.shape, bool))
    shown.mask[-1, -1] = True  # background -> background is not counted
    image = ax.imshow(shown, cmap="Blues", vmin=0, vmax=max(float(values.max()), 1e-9))
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ticks = range(len(labels))
    ax.set_xticks(ticks, labels, rotation=45 if len(labels) > 5 else 0, ha="right" if len(labels) > 5 else "center")
    ax.set_yticks(ticks, labels)
    ax.set_xlabel("prediction")
    ax.set_ylabel("ground truth")
    ax.set_title(title, fontsize=11)
    if len(labels) > MAX_ANNOTATED:
        return
    size = 11 if len(labels) <= 8 else 8
    for (i, j), value in np.ndenumerate(values):
        if (i, j) == (len(labels) - 1, len(labels) - 1):
            continue
        ink = "white" if value > 0.6 * values.max() else "black"
        ax.text(j, i, format(value, fmt), ha="center", va="center", color=ink, fontsize=size)


def confusion_figure(counts: np.ndarray, names: list[str], score_threshold: float, iou_threshold: float):
    """counts [K + 1, K + 1] (last row and column: background) -> the two-panel matplotlib Figure."""
    labels = [*names, "background"]
    side = max(5.5, 0.45 * len(labels) + 2.5)
    fig, axes = pyplot().subplots(1, 2, figsize=(2 * side + 1, side))
    matrix_panel(axes[0], counts, labels, "counts", "d")
    matrix_panel(axes[1], row_normalised(counts), labels, "share of each ground-truth row", ".2f")
    fig.suptitle(f"confusion matrix at IoU >= {iou_threshold:g}, score >= {score_threshold:g}: "
                 "last column = missed objects, last row = false detections", fontsize=11)
    fig.tight_layout()
    return fig
