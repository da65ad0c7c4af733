"""`split`: stratified train/val(/test) split of a COCO file, rarest category first.

Every category with at least as many images as splits lands in every split; same seed, same split.
--group-by FIELD keeps images that share an image field's value (the tiles of one photo) in one split.
"""
from __future__ import annotations

import json
import random
import sys
from collections import Counter
from pathlib import Path

from datasets.core.coco import check_not_input, index_coco, load_coco, new_coco, save_coco
from datasets.core.errors import UserError


def split_fractions(val: float, test: float) -> dict[str, float]:
    """Wanted fraction per split name; UserError if they do not leave room for train."""
    if not (0 < val < 1) or not (0 <= test < 1) or val + test >= 1:
        raise UserError(f"need 0 < --val, 0 <= --test and --val + --test < 1; got {val} and {test}")
    fractions = {"train": 1 - val - test, "val": val}
    if test > 0:
        fractions["test"] = test
    return fractions


def assign(units: list, want: dict[str, float], have: dict[str, int], assigned: dict, sizes: Counter,
           weight: dict) -> None:
    """Give each unit (an image, or a group of `weight` images) to the split furthest below its wanted
    share of images; first fill any split that has none."""
    total = sum(weight[unit] for unit in units) + sum(have.values())
    for unit in units:
        empty = [name for name in want if have[name] == 0]
        if empty:
            choice = min(empty, key=lambda name: (want[name], name))
        else:
            choice = max(want, key=lambda name: (want[name] * total - have[name], -sizes[name]))
        assigned[unit] = choice
        have[choice] += weight[unit]
        sizes[choice] += weight[unit]


def stratify(by_unit: dict, want: dict[str, float], seed: int, weight: dict | None = None) -> dict:
    """unit id -> split name, category by category from the rarest; a unit weighs `weight[unit]` images
    (default 1) and by_unit holds all its annotations."""
    rng = random.Random(seed)
    weight = weight or {unit: 1 for unit in by_unit}
    per_category: dict[int, list] = {}
    for unit, anns in sorted(by_unit.items()):
        for cat in sorted({a["category_id"] for a in anns}):
            per_category.setdefault(cat, []).append(unit)
    assigned: dict = {}
    sizes: Counter = Counter()
    for cat, units in sorted(per_category.items(), key=lambda item: (len(item[1]), item[0])):
        have = Counter({name: 0 for name in want})
        for unit in units:
            if unit in assigned:
                have[assigned[unit]] += weight[unit]
        todo = [u for u in units if u not in assigned]
        rng.shuffle(todo)
        assign(todo, want, have, assigned, sizes, weight)
    rest = sorted(u for u in by_unit if u not in assigned)
    rng.shuffle(rest)
    have = Counter({name: sizes[name] for name in want})
    assign(rest, want, have, assigned, sizes, weight)
    return assigned


def image_groups(images: dict, field: str) -> dict[tuple, list]:
    """Group key -> image ids: images with the same value of `field` (e.g. the `source` photo that
    `tile` records) form one group; an image without the field is a group of its own."""
    groups: dict[tuple, list] = {}
    for image_id, img in sorted(images.items()):
        value = img.get(field)
        key = ("image", image_id) if value is None else ("value", json.dumps(value, sort_keys=True))
        groups.setdefault(key, []).append(image_id)
    return groups


def assign_images(images: dict, by_image: dict, want: dict[str, float], seed: int,
                  group_by: str | None, source: str) -> dict:
    """image id -> split name; with `group_by`, every image of a group lands in the same split."""
    if not group_by:
        return stratify(by_image, want, seed)
    groups = image_groups(images, group_by)
    if len(groups) < len(want):
        raise UserError(f"{source}: --group-by {group_by} gives {len(groups)} groups, too few for {len(want)} splits")
    by_group = {key: [a for i in ids for a in by_image[i]] for key, ids in groups.items()}
    chosen = stratify(by_group, want, seed, {key: len(ids) for key, ids in groups.items()})
    return {image_id: chosen[key] for key, ids in groups.items() for image_id in ids}


def split_coco(data: dict, val: float, test: float = 0.0, seed: int = 0, source: str = "input",
               group_by: str | None = None) -> dict[str, dict]:
    """Split name -> COCO dict; every split keeps all categories and the same file names.

    With `group_by` (an image field such as `source`), images sharing its value stay in one split, the
    groups placed so the fractions hold approximately; an image lacking the field is its own group.
    """
    want = split_fractions(val, test)
    images, _, by_image = index_coco(data, source)
    if len(images) < len(want):
        raise UserError(f"{source}: {len(images)} images cannot fill {len(want)} splits")
    assigned = assign_images(images, by_image, want, seed, group_by, source)
    out = {}
    for name in want:
        ids = [i for i in images if assigned[i] == name]
        anns = [a for i in ids for a in by_image[i]]
        out[name] = new_coco([images[i] for i in ids], anns, data["categories"], data.get("info"))
        out[name]["licenses"] = data.get("licenses", [])
    return out


def report(splits: dict[str, dict], categories: list) -> None:
    """Images per split and categories missing from a split (warned on stderr)."""
    for name, part in splits.items():
        counts = Counter(a["category_id"] for a in part["annotations"])
        print(f"{name}: {len(part['images'])} images, {len(part['annotations'])} annotations")
        missing = [c["name"] for c in categories if counts[c["id"]] == 0]
        if missing:
            print(f"warning: {name} has no {', '.join(missing)} (too few images of them)", file=sys.stderr)


def report_groups(images: list, field: str) -> None:
    """How many images --group-by grouped; a warning when no image has the field."""
    having = [img for img in images if img.get(field) is not None]
    if not having:
        print(f"warning: no image has the field '{field}'; every image is a group of its own", file=sys.stderr)
        return
    groups = len({json.dumps(img[field], sort_keys=True) for img in having})
    print(f"kept {len(having)} images in {groups} groups by '{field}' ({len(images) - len(having)} without it)")


def run(args) -> None:
    """CLI: python -m datasets split."""
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a folder")
    data = load_coco(args.file)
    splits = split_coco(data, args.val, args.test, args.seed, str(args.file), args.group_by)
    for name in splits:
        check_not_input(out / f"{name}.json", args.file)
    for name, part in splits.items():
        save_coco(out / f"{name}.json", part)
    report(splits, data["categories"])
    if args.group_by:
        report_groups(data["images"], args.group_by)
