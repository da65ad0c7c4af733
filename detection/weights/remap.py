"""Class rows matched by category name: a checkpoint's class-dependent outputs moved onto a new category list.

Known names keep their rows bit for bit, new names keep the fresh rows of a newly built model, dropped names go.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from datasets.core.errors import UserError

PLACEHOLDER = "N/A"  # torchvision's name for the unused label indices of COCO's 91; never matched


@dataclass(frozen=True)
class ClassRows:
    """Dim 0 of a class-dependent tensor: G repeats (one per anchor) of `prefix` rows (YOLO's box and objectness),
    then `background` (0 or 1) plus K classes of `width` rows each (4 for class-specific box deltas)."""

    prefix: int
    background: int
    width: int

    def groups(self, rows: int, classes: int) -> int | None:
        unit = self.prefix + (classes + self.background) * self.width
        return rows // unit if rows >= unit and rows % unit == 0 else None

    def remap(self, old: torch.Tensor, fresh: torch.Tensor, index: list[int | None], old_classes: int,
              new_classes: int) -> torch.Tensor | None:
        """`fresh` with the rows of matched classes (index[j]: old class of new class j, or None), the background
        and the prefix copied from `old`; None when the shapes do not follow this layout."""
        groups = self.groups(old.shape[0], old_classes)
        if groups is None or groups != self.groups(fresh.shape[0], new_classes) or old.shape[1:] != fresh.shape[1:]:
            return None
        head, width = self.prefix + self.background * self.width, self.width
        old_unit, new_unit = head + old_classes * width, head + new_classes * width
        out = fresh.detach().clone()
        for g in range(groups):
            src, dst = g * old_unit, g * new_unit
            out[dst:dst + head] = old[src:src + head]
            for j, i in enumerate(index):
                if i is not None:
                    out[dst + head + j * width:dst + head + (j + 1) * width] = \
                        old[src + head + i * width:src + head + (i + 1) * width]
        return out


R_CNN = [(r"(^|\.)box_predictor\.cls_score\.(weight|bias)$", ClassRows(0, 1, 1)),
         (r"(^|\.)box_predictor\.bbox_pred\.(weight|bias)$", ClassRows(0, 1, 4))]
# family -> (weight-name pattern, layout) of its class-dependent tensors
CLASS_TENSORS: dict[str, list[tuple[str, ClassRows]]] = {
    "faster_rcnn": R_CNN, "fast_rcnn": R_CNN, "rcnn": R_CNN,
    "ssd": [(r"^head\.classification_head\.module_list\.\d+(\.\d+)?\.(weight|bias)$", ClassRows(0, 1, 1))],
    "yolo": [(r"^head\.\d+\.(weight|bias)$", ClassRows(5, 0, 1))],
}


def class_layout(family: str, name: str) -> ClassRows | None:
    for pattern, layout in CLASS_TENSORS.get(family, ()):
        if re.search(pattern, name):
            return layout
    return None


def _key(name: object) -> str:
    return str(name).strip().casefold()


def check_unique_names(categories: list[dict], where: str) -> None:
    """UserError naming `where` when two categories share a name (case and spaces aside)."""
    seen: dict[str, dict] = {}
    for category in categories:
        key = _key(category.get("name", ""))
        if key in seen:
            raise UserError(f"{where}: categories {seen[key].get('id')} and {category.get('id')} are both named "
                            f"{category.get('name')!r}; names must be unique to match classes by name")
        seen[key] = category


def read_categories(path: str | Path) -> list[dict]:
    """The categories of a COCO json file ({id, name}, sorted by id); UserError on a bad file or duplicate names."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"categories file not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not a JSON file ({exc})") from None
    found = data.get("categories") if isinstance(data, dict) else None
    if not isinstance(found, list) or not found:
        raise UserError(f"{path}: no 'categories' list (give a COCO annotations file)")
    for category in found:
        if not (isinstance(category, dict) and isinstance(category.get("id"), int) and category["id"] >= 1
                and isinstance(category.get("name"), str) and category["name"].strip()):
            raise UserError(f"{path}: category {category!r} needs an integer id >= 1 and a name")
    categories = [{"id": c["id"], "name": c["name"]} for c in sorted(found, key=lambda c: c["id"])]
    ids = [c["id"] for c in categories]
    if len(set(ids)) != len(ids):
        raise UserError(f"{path}: category ids repeat")
    check_unique_names(categories, str(path))
    return categories


def match_by_name(old: list[dict], new: list[dict]) -> list[int | None]:
    """For each new category, the position in `old` of the category of the same name (None: a new class)."""
    positions: dict[str, int] = {}
    for i, category in enumerate(old):
        key = _key(category.get("name", ""))
        if key and key != _key(PLACEHOLDER):
            positions.setdefault(key, i)
    return [positions.get(_key(c["name"])) for c in new]


@dataclass
class Transfer:
    """What `transfer` did, counted over the target model's tensors."""

    loaded: int = 0  # copied whole: name and shape fit
    remapped: int = 0  # class-dependent: rows matched by category name
    fresh: list[str] = field(default_factory=list)  # left as built
    total: int = 0
    kept: list[str] = field(default_factory=list)  # category names whose class rows came from the checkpoint
    new: list[str] = field(default_factory=list)  # category names that start fresh

    def line(self, source: str, what: str = "pretrained") -> str:
        kept = f"class rows kept for {len(self.kept)} of {len(self.kept) + len(self.new)} categories"
        if self.new:
            kept += f" (fresh: {', '.join(self.new[:8])}{', ...' if len(self.new) > 8 else ''})"
        return (f"{what} {source}: {self.loaded + self.remapped} of {self.total} tensors loaded, {kept}, "
                f"{len(self.fresh)} tensors fresh")

    def record(self, source: str) -> dict:
        return {"type": "pretrained", "epoch": 0, "checkpoint": source, "loaded": self.loaded + self.remapped,
                "tensors": self.total, "class_tensors_remapped": self.remapped, "class_rows_kept": len(self.kept),
                "new_classes": self.new, "fresh": len(self.fresh)}


def transfer(model: torch.nn.Module, family: str, state: dict, old_categories: list[dict],
             new_categories: list[dict]) -> Transfer:
    """Load into `model` (built for `new_categories`) every tensor of `state` whose name and shape fit; the class
    rows of `family`'s class-dependent tensors by category name. Everything else keeps the model's own values."""
    index = match_by_name(old_categories, new_categories)
    result = Transfer(kept=[c["name"] for c, i in zip(new_categories, index) if i is not None],
                      new=[c["name"] for c, i in zip(new_categories, index) if i is None])
    target = model.state_dict()
    result.total = len(target)
    loaded = {}
    for name, fresh in target.items():
        old, layout = state.get(name), class_layout(family, name)
        if isinstance(old, torch.Tensor) and layout is not None:
            rows = layout.remap(old, fresh, index, len(old_categories), len(new_categories))
            if rows is not None:
                loaded[name] = rows
                result.remapped += 1
                continue
        if isinstance(old, torch.Tensor) and old.shape == fresh.shape and old.dtype == fresh.dtype:
            loaded[name] = old
            result.loaded += 1
        else:
            result.fresh.append(name)
    model.load_state_dict(loaded, strict=False)
    return result
