"""Pictures of what a model sees: a feature map's channels as a grid, first-layer filters, and saliency overlays.

numpy in, matplotlib Figure out (Agg backend); figure sizes are fixed, so every PNG has a known size.
"""
from __future__ import annotations

import math

import numpy as np

from datasets.view.plot import pyplot

DPI = 100
GRID_SIZE = (11.0, 11.5)  # inches: feature-map and filter grids are 1100 x 1150 px at DPI
SALIENCY_SIZE = (16.0, 6.0)  # inches: 1600 x 600 px


def grid_axes(count: int, title: str, right: float = 0.97):
    """A figure of GRID_SIZE with a square grid of at least `count` axes, all without ticks (`right`: where the
    grid ends, leaving room for a colour bar)."""
    side = max(1, math.ceil(math.sqrt(count)))
    fig, axes = pyplot().subplots(side, side, figsize=GRID_SIZE, squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    fig.suptitle(title, fontsize=12)
    fig.subplots_adjust(left=0.03, right=right, top=0.92, bottom=0.03, wspace=0.15, hspace=0.3)
    return fig, axes.ravel()


def feature_grid_figure(name: str, fmap: np.ndarray, stride: float | None, count: int = 16):
    """fmap [C, H, W] -> the `count` channels with the highest mean activation, on one shared colour scale."""
    channels = fmap.shape[0]
    order = np.argsort(-fmap.reshape(channels, -1).mean(axis=1))[:count]
    shown = fmap[order]
    low, high = float(shown.min()), float(shown.max())
    where = f", stride {stride:g}" if stride else ""
    fig, axes = grid_axes(len(order), f"{name}: {channels} channels of {fmap.shape[1]}x{fmap.shape[2]}{where}\n"
                                      f"the {len(order)} most active (by mean activation), one colour scale",
                           right=0.88)
    image = None
    for ax, index, values in zip(axes, order, shown):
        image = ax.imshow(values, cmap="viridis", vmin=low, vmax=high if high > low else low + 1e-6,
                          interpolation="nearest")
        ax.set_title(f"channel {index}  (mean {values.mean():.3g})", fontsize=8)
    colorbar_axes = fig.add_axes([0.9, 0.1, 0.02, 0.75])
    fig.colorbar(image, cax=colorbar_axes).set_label("activation")
    return fig


def filter_grid_figure(name: str, weights: np.ndarray, count: int = 64):
    """weights [O, 3, k, k] of the first conv -> up to `count` filters as RGB tiles, each stretched to its own
    min..max (grey = its middle value); the tile title gives its largest |weight|."""
    shown = weights[:count]
    out, cin, kh, kw = weights.shape
    fig, axes = grid_axes(len(shown), f"first layer {name}: {out} filters of {cin}x{kh}x{kw} (showing "
                                      f"{len(shown)}) as RGB\neach filter stretched to its own range: "
                                      f"bright = large positive weight for that colour")
    for index, (ax, kernel) in enumerate(zip(axes, shown)):
        low, high = float(kernel.min()), float(kernel.max())
        tile = (kernel - low) / (high - low) if high > low else np.full_like(kernel, 0.5)
        ax.imshow(np.transpose(tile, (1, 2, 0)), interpolation="nearest")
        ax.set_title(f"#{index}  |w| <= {max(abs(low), abs(high)):.2f}", fontsize=7)
    return fig


def overlay_panel(ax, image: np.ndarray, heat: np.ndarray | None, box: list[float], title: str, label: str):
    """The image (greyed under a heat map) with the heat map (0..1, opaque where high) and the detection's box;
    every panel keeps a colour-bar slot so the three line up."""
    from mpl_toolkits.axes_grid1 import make_axes_locatable

    bar_axes = make_axes_locatable(ax).append_axes("right", size="4%", pad=0.08)
    if heat is None:
        ax.imshow(image)
        bar_axes.set_axis_off()
    else:
        ax.imshow(image.mean(axis=2), cmap="gray", vmin=0, vmax=255)
        shown = ax.imshow(heat, cmap="inferno", alpha=np.clip(0.15 + 0.85 * heat, 0, 1), vmin=0, vmax=1,
                          interpolation="bilinear")
        ax.figure.colorbar(shown, cax=bar_axes).set_label(label)
    x1, y1, x2, y2 = box
    ax.add_patch(pyplot().Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor="cyan", linewidth=2))
    ax.set_title(title, fontsize=10)
    ax.set_axis_off()


def saliency_figure(image: np.ndarray, box: list[float], gradient: np.ndarray, cam: np.ndarray, title: str,
                    gradient_scale: float, cam_map: str):
    """image [h, w, 3] uint8 with the detection's box xyxy; gradient and cam [h, w] in 0..1."""
    fig, axes = pyplot().subplots(1, 3, figsize=SALIENCY_SIZE)
    overlay_panel(axes[0], image, None, box, "the detection", "")
    overlay_panel(axes[1], image, gradient, box, "gradient saliency: |d score / d pixel|",
                  f"share of the 99th percentile ({gradient_scale:.3g}), clipped")
    overlay_panel(axes[2], image, cam, box, f"Grad-CAM on {cam_map} (the head's map with most gradient)",
                  "share of the largest")
    fig.suptitle(title, fontsize=12)
    fig.subplots_adjust(left=0.02, right=0.96, top=0.86, bottom=0.04, wspace=0.25)
    return fig
