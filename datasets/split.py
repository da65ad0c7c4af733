"""`split`: stratified train/val(/test) split of a COCO file, rarest category first.

Every category with at least as many images as splits lands in every split; same seed, same split.
"""
from __future__ import annotations

import random
import sys
from collections import Counter
from pathlib import Path

from datasets.coco import check_not_input, index_coco, load_coco, new_coco, save_coco
from datasets.errors import UserError


def split_fractions(val: float, test: float) -> dict[str, float]:
    """Wanted fraction per split name; UserError if they do not leave room for train."""
    if not (0 < val < 1) or not (0 <= test < 1) or val + test >= 1:
        raise UserError(f"need 0 < --val, 0 <= --test and --val + --test < 1; got {val} and {test}")
    fractions = {"train": 1 - val - test, "val": val}
    if test > 0:
        fractions["test"] = test
    return fractions


def assign(image_ids: list, want: dict[str, float], have: dict[str, int], assigned: dict, sizes: Counter) -> None:
    """Give each image to the split furthest below its wanted share; first fill any split that has none."""
    total = len(image_ids) + sum(have.values())
    for image_id in image_ids:
        empty = [name for name in want if have[name] == 0]
        if empty:
            choice = min(empty, key=lambda name: (want[name], name))
        else:
            choice = max(want, key=lambda name: (want[name] * total - have[name], -sizes[name]))
        assigned[image_id] = choice
        have[choice] += 1
        sizes[choice] += 1


def stratify(by_image: dict, want: dict[str, float], seed: int) -> dict:
    """image id -> split name, category by category from the rarest."""
    rng = random.Random(seed)
    per_category: dict[int, list] = {}
    for image_id, anns in sorted(by_image.items()):
        for cat in sorted({a["category_id"] for a in anns}):
            per_category.setdefault(cat, []).append(image_id)
    assigned: dict = {}
    sizes: Counter = Counter()
    for cat, image_ids in sorted(per_category.items(), key=lambda item: (len(item[1]), item[0])):
        have = Counter({name: 0 for name in want})
        for image_id in image_ids:
            if image_id in assigned:
                have[assigned[image_id]] += 1
        todo = [i for i in image_ids if i not in assigned]
        rng.shuffle(todo)
        assign(todo, want, have, assigned, sizes)
    rest = sorted(i for i in by_image if i not in assigned)
    rng.shuffle(rest)
    have = Counter({name: sizes[name] for name in want})
    assign(rest, want, have, assigned, sizes)
    return assigned


def split_coco(data: dict, val: float, test: float = 0.0, seed: int = 0, source: str = "input") -> dict[str, dict]:
    """Split name -> COCO dict; every split keeps all categories and the same file names."""
    want = split_fractions(val, test)
    images, _, by_image = index_coco(data, source)
    if len(images) < len(want):
        raise UserError(f"{source}: {len(images)} images cannot fill {len(want)} splits")
    assigned = stratify(by_image, want, seed)
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


def run(args) -> None:
    """CLI: python -m datasets split."""
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a folder")
    data = load_coco(args.file)
    splits = split_coco(data, args.val, args.test, args.seed, str(args.file))
    for name in splits:
        check_not_input(out / f"{name}.json", args.file)
    for name, part in splits.items():
        save_coco(out / f"{name}.json", part)
    report(splits, data["categories"])
