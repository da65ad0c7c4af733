"""The overview figure of `stats --plot`: class counts, box sizes, objects per image, box centres.

Uses matplotlib's Agg backend (no display) and writes the file atomically.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from datasets.core.atomic import atomic_open
from datasets.core.errors import UserError


def class_panel(ax, stats: dict) -> None:
    names = list(stats["per_class"])
    counts = [stats["per_class"][n] for n in names]
    bars = ax.bar(range(len(names)), counts, color="tab:blue")
    ax.bar_label(bars, padding=2, fontsize=8)
    ax.set_xticks(range(len(names)), names, rotation=45 if len(names) > 6 else 0, ha="right" if len(names) > 6 else "center")
    ax.set_title("annotations per class")
    ax.set_ylabel("annotations")
    ax.margins(y=0.12)


def size_panel(ax, data: dict, stats: dict) -> None:
    sides = np.sqrt([max(float(a.get("area") or 0), 0.0) for a in data["annotations"]])
    ax.hist(sides, bins=40, color="tab:orange")
    for edge in (32, 96):
        ax.axvline(edge, color="grey", linestyle="--", linewidth=1)
    sizes = stats["box_sizes"]
    ax.set_title(f"object size: small {sizes['small']}, medium {sizes['medium']}, large {sizes['large']}")
    ax.set_xlabel("sqrt(area) in pixels  (dashed: COCO small/medium/large at 32, 96)")
    ax.set_ylabel("annotations")


def count_bins(values, max_bins: int = 40) -> np.ndarray:
    """Histogram edges for whole-number counts: equal widths over min..max, at most `max_bins` of them.

    A bin is one count wide while that gives no more than `max_bins` bins, else a whole number of counts
    wide, so every bar stays a visible fraction of the axis (counts 61, 279 and 574 get three clear bars).
    """
    low, high = int(np.min(values)), int(np.max(values))
    width = max(1, int(np.ceil((high - low + 1) / max_bins)))
    return low - 0.5 + width * np.arange((high - low) // width + 2)


def per_image_panel(ax, data: dict) -> None:
    counts: dict = {img["id"]: 0 for img in data["images"]}
    for ann in data["annotations"]:
        counts[ann["image_id"]] += 1
    values = np.array(list(counts.values()) or [0])
    ax.hist(values, bins=count_bins(values), color="tab:green", rwidth=0.85)
    ax.set_title(f"annotations per image (mean {values.mean():.2f})")
    ax.set_xlabel("annotations in the image")
    ax.set_ylabel("images")


def centre_panel(ax, data: dict) -> None:
    sizes = {img["id"]: (img["width"], img["height"]) for img in data["images"]}
    xs, ys = [], []
    for ann in data["annotations"]:
        x, y, w, h = ann["bbox"]
        width, height = sizes[ann["image_id"]]
        xs.append((x + w / 2) / width)
        ys.append((y + h / 2) / height)
    ax.hist2d(xs or [0.5], ys or [0.5], bins=20, range=[[0, 1], [0, 1]], cmap="viridis")
    ax.invert_yaxis()
    ax.set_aspect("equal")
    ax.set_title("box centres (fraction of image)")


FIGURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".pdf", ".svg")


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed), imported on first use."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | os.PathLike, dpi: int = 100) -> None:
    """Write a matplotlib figure atomically, in the format its suffix names, then close it."""
    suffix = Path(path).suffix.lower()
    if suffix not in FIGURE_SUFFIXES:
        raise UserError(f"{path}: cannot write a figure as {suffix or 'a file without suffix'!r}; "
                        f"use one of {', '.join(FIGURE_SUFFIXES)}")
    try:
        with atomic_open(path, "wb") as handle:
            fig.savefig(handle, format=suffix.lstrip(".").replace("jpg", "jpeg"), dpi=dpi)
    finally:
        pyplot().close(fig)


def plot_stats(data: dict, stats: dict, path: str | os.PathLike) -> None:
    """Write the 2x2 overview figure to `path`."""
    fig, axes = pyplot().subplots(2, 2, figsize=(12, 9))
    class_panel(axes[0, 0], stats)
    size_panel(axes[0, 1], data, stats)
    per_image_panel(axes[1, 0], data)
    centre_panel(axes[1, 1], data)
    fig.suptitle(f"{stats['images']} images, {stats['annotations']} annotations, {stats['categories']} categories")
    fig.tight_layout()
    save_figure(fig, path)
