"""Precision-recall curves at IoU 0.5, one line per class plus their mean, drawn from COCOeval's arrays.

The caller hands over the slices (recall thresholds, precision per class); nothing is recomputed here.
"""
from __future__ import annotations

import numpy as np

from datasets.view.plot import pyplot

FIGSIZE = (9.0, 6.5)  # inches at 100 dpi: 900 x 650 pixels


def pr_figure(recall: np.ndarray, precision: np.ndarray, names: list[str], ap50: list[float | None],
              title: str):
    """recall [R]; precision [R, K] (COCOeval's, -1 where a class has no ground truth); ap50 per class.

    Returns the matplotlib Figure: a line per class with its AP50 in the legend, the mean in bold.
    """
    fig, ax = pyplot().subplots(figsize=FIGSIZE)
    defined = [k for k in range(len(names)) if ap50[k] is not None]
    thin = len(names) > 20  # many classes: thin, unlabelled lines, the mean carries the legend
    for k in defined:
        ax.plot(recall, np.clip(precision[:, k], 0, 1), linewidth=0.8 if thin else 1.6,
                label=None if thin else f"{names[k]}  {ap50[k]:.3f}")
    if defined:
        mean = precision[:, defined].clip(0, 1).mean(axis=1)
        mean_ap = float(np.mean([ap50[k] for k in defined]))
        ax.plot(recall, mean, color="black", linewidth=3, label=f"all classes  {mean_ap:.3f} mAP@0.5")
    if not any(ap50[k] for k in defined):  # every curve lies on the axis: say why
        ax.text(0.5, 0.5, "no detection matches an object at IoU 0.5", ha="center", va="center", fontsize=12,
                color="dimgray", transform=ax.transAxes)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=11)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), title="class  AP50", fontsize=10, frameon=False)
    fig.tight_layout()
    return fig
