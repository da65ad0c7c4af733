"""The figure of `audit --plot`: instances per class and split, the box-size histogram, and leaked pairs side by
side (the first image of each leaked group beside one from another split), so a person can confirm them at a glance.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from datasets.core.errors import UserError
from datasets.core.images import read_rgb
from datasets.view.plot import pyplot, save_figure

MAX_PAIRS = 6  # leaked pairs drawn, two per row


def class_split_panel(ax, report: dict) -> None:
    """Bars of instances per class, stacked by split (the top is the class's total), and --min-instances."""
    names = list(report["classes"])
    bottom = np.zeros(len(names))
    for split in report["summary"]["splits"]:
        counts = np.array([report["classes"][n]["per_split"][split]["instances"] for n in names], dtype=float)
        ax.bar(range(len(names)), counts, 0.6, bottom=bottom, label=split)
        bottom += counts
    for x, total in enumerate(bottom):
        ax.text(x, total, f"{int(total)}", ha="center", va="bottom", fontsize=8)
    rotate = len(names) > 6
    ax.set_xticks(range(len(names)), names, rotation=45 if rotate else 0, ha="right" if rotate else "center")
    rare = report["flags"]["min_instances"]
    ax.axhline(rare, color="tab:red", linestyle=":", linewidth=1, label=f"--min-instances {rare}")
    ax.set_title("instances per class (stacked by split)")
    ax.legend(fontsize=8)
    ax.margins(y=0.12)


def size_panel(ax, report: dict, sides: dict[str, list[float]]) -> None:
    """Histogram of sqrt(box area) per split, with COCO's small/medium/large edges and --min-box."""
    every = [v for values in sides.values() for v in values] or [0.0]
    bins = np.linspace(0, max(every) * 1.02 + 1e-6, 40)
    for split, values in sides.items():
        ax.hist(values, bins=bins, histtype="step", linewidth=1.5, label=split)
    for edge in (32, 96):
        ax.axvline(edge, color="grey", linestyle="--", linewidth=1)
    small = report["flags"].get("small_boxes")
    if small and not small["input_size"]:
        ax.axvline(small["min_box"], color="tab:red", linestyle=":", linewidth=1,
                   label=f"--min-box {small['min_box']:g}")
    ax.set_title("box size (dashed: COCO small / medium / large at 32, 96)")
    ax.set_xlabel("sqrt(area) in image pixels")
    ax.set_ylabel("boxes")
    ax.legend(fontsize=8)


def leaked_pairs(report: dict) -> list[tuple[str, str, str, str, int]]:
    """(split a, file a, split b, file b, distance): each leak group's first image and its first image in
    another split."""
    pairs = []
    for group in report["leaks"][:MAX_PAIRS]:
        first_split, first_file = group["splits"][0], group["images"][0]
        other = next(k for k, s in enumerate(group["splits"]) if s != first_split)
        pairs.append((first_split, first_file, group["splits"][other], group["images"][other], group["distance"]))
    return pairs


def show_image(ax, path: Path, title: str) -> None:
    ax.axis("off")
    try:
        ax.imshow(read_rgb(path))
    except UserError:
        ax.text(0.5, 0.5, "unreadable", ha="center", va="center", transform=ax.transAxes)
    ax.set_title(title, fontsize=8)


def plot_audit(report: dict, sides: dict[str, list[float]], images_dir: str | os.PathLike,
               path: str | os.PathLike) -> None:
    """Write the audit figure: two panels on top, then up to MAX_PAIRS leaked pairs, two pairs a row."""
    plt = pyplot()
    pairs = leaked_pairs(report)
    rows = (len(pairs) + 1) // 2
    fig = plt.figure(figsize=(12, 4.5 + 2.8 * rows))
    grid = fig.add_gridspec(1 + rows, 4, height_ratios=[1.6] + [1.0] * rows)
    class_split_panel(fig.add_subplot(grid[0, :2]), report)
    size_panel(fig.add_subplot(grid[0, 2:]), report, sides)
    for k, (split_a, file_a, split_b, file_b, distance) in enumerate(pairs):
        row, col = 1 + k // 2, 2 * (k % 2)
        show_image(fig.add_subplot(grid[row, col]), Path(images_dir) / file_a, f"{split_a}/{file_a}")
        show_image(fig.add_subplot(grid[row, col + 1]), Path(images_dir) / file_b,
                   f"{split_b}/{file_b} (distance {distance})")
    summary = report["summary"]
    shown = f", first {len(pairs)} shown" if summary["leak_groups"] > len(pairs) else ""
    fig.suptitle(f"{summary['images']} images in {len(summary['splits'])} splits; leaks: {summary['leak_groups']} "
                 f"groups{shown}; duplicates within a split: {summary['duplicate_groups']}")
    fig.tight_layout()
    save_figure(fig, path)
