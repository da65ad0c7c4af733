"""The checks that validate (find problems) and repair (fix them) both build on.

Type tests for JSON values, id indexing, and the area of a COCO segmentation.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from pycocotools import mask as mask_utils

from datasets.core.coco import segmentation_to_rle


@dataclass(frozen=True)
class Problem:
    """One defect: a short kind (for tests and scripts) and a message naming the id."""

    kind: str
    message: str

    def __str__(self) -> str:
        return f"{self.message} [{self.kind}]"


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_ids(items: list, what: str) -> tuple[list[Problem], dict]:
    """Ids present, integer and unique; returns problems and the first item of each id."""
    problems, seen = [], {}
    for position, item in enumerate(items):
        if not isinstance(item, dict) or not is_int(item.get("id")):
            problems.append(Problem("bad-id", f"{what} at position {position}: 'id' missing or not an integer"))
        elif item["id"] in seen:
            problems.append(Problem("duplicate-id", f"{what} {item['id']}: id used more than once"))
        else:
            seen[item["id"]] = item
    return problems, seen


def segmentation_area(ann: dict, img: dict) -> float | None:
    """Mask area of a well-formed segmentation; None when it has none; ValueError when malformed."""
    seg = ann.get("segmentation")
    if seg is None or seg == []:
        return None
    if isinstance(seg, list):
        if not all(isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0 and all(is_number(v) for v in p) for p in seg):
            raise ValueError("polygons must be lists of at least 3 x, y pairs")
    elif isinstance(seg, dict):
        if seg.get("size") != [img["height"], img["width"]] or not isinstance(seg.get("counts"), (str, list)):
            raise ValueError(f"RLE must have size [{img['height']}, {img['width']}] and counts")
    else:
        raise ValueError("must be a polygon list or an RLE object")
    try:
        return float(mask_utils.area(segmentation_to_rle(seg, img["height"], img["width"])))
    except Exception as exc:  # pycocotools raises plain Exceptions on malformed RLE
        raise ValueError(f"pycocotools cannot decode it ({exc})")
