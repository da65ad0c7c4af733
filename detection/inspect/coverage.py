"""Feature maps against the data: does each map's receptive field cover the dataset's boxes, and its anchors?

Boxes are taken as letterboxed to the input (scale = S / max(h, w) of their image), as training sees them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from datasets.checks.anchors import letterboxed_sizes
from datasets.core.coco import load_coco
from datasets.core.errors import UserError
from detection.inspect.report import FeatureMap
from detection.inspect.text import align, number


def box_sides(annotations: str | Path, side: int) -> np.ndarray:
    """Longest side of every non-crowd box, letterboxed to side x side; UserError when there are none."""
    sizes = letterboxed_sizes(load_coco(annotations), side, str(annotations))
    if not len(sizes):
        raise UserError(f"{annotations}: no boxes to compare the receptive fields with")
    return sizes.max(axis=1)


def coverage(annotations: str | Path, side: int, maps: list[FeatureMap], anchors: dict[str, float]) -> dict[str, Any]:
    """For each head map: its receptive field, the share of boxes it covers, whether it covers the largest,
    its largest anchor; plus warnings (nothing covers the largest boxes; anchors larger than their map sees)."""
    sides = box_sides(annotations, side)
    largest = float(sides.max())
    rows, warnings = [], []
    for fmap in maps:
        rf = fmap.receptive_field or 0.0
        anchor = anchors.get(fmap.name)
        rows.append({"name": fmap.name, "receptive_field": fmap.receptive_field,
                     "boxes_covered": round(float((sides <= rf).mean()), 4), "covers_largest": largest <= rf,
                     "largest_anchor": None if anchor is None else round(anchor, 1)})
        if anchor is not None and anchor > rf:
            warnings.append(f"{fmap.name}: anchors up to {anchor:.0f} px, but a cell of this map sees only "
                            f"{rf:.0f} px of the image")
    best = max(maps, key=lambda m: m.receptive_field or 0.0) if maps else None
    if best is not None and not (best.receptive_field or 0) >= largest:
        warnings.append(f"no map sees the largest boxes whole: longest box side {largest:.0f} px, widest receptive "
                        f"field {best.receptive_field or 0:.0f} px ({best.name})")
    return {"annotations": str(annotations), "input_side": side, "boxes": int(len(sides)),
            "largest_box_side": round(largest, 1), "box_side_p95": round(float(np.percentile(sides, 95)), 1),
            "maps": rows, "warnings": warnings}


def coverage_lines(cov: dict[str, Any]) -> list[str]:
    """The coverage section of the text report."""
    lines = [f"data: {cov['boxes']:,} boxes in {cov['annotations']}, letterboxed to {cov['input_side']} px: "
             f"longest side up to {number(cov['largest_box_side'])} px (95% within {number(cov['box_side_p95'])} px)"]
    rows = [["map", "RF", "boxes within RF", "covers largest", "largest anchor"]]
    for row in cov["maps"]:
        rows.append([row["name"], number(row["receptive_field"]), f"{100 * row['boxes_covered']:.1f}%",
                     "yes" if row["covers_largest"] else "no", number(row["largest_anchor"])])
    lines += ["  " + line for line in align(rows, left=1)]
    lines += [f"warning: {text}" for text in cov["warnings"]]
    return lines
