"""`audit --fix-leaks OUT_DIR`: new split files in which every leaked group of near-duplicates sits in one split.

The group goes to the split named by --keep-in when it touches that split, else to the first of its splits in the
order the --split options were given; its other images move there with their annotations (new ids, categories
matched by name). A file already in the keeping split is dropped from the others instead of copied twice.
"""
from __future__ import annotations

import copy
from pathlib import Path

from datasets.core.coco import check_not_input, save_coco
from datasets.core.errors import UserError


def keeper(group: dict, order: list[str], keep_in: str | None) -> str:
    """The split a leaked group stays in."""
    splits = set(group["splits"])
    if keep_in in splits:
        return keep_in
    return next(name for name in order if name in splits)


def image_record(split, file_name: str) -> dict:
    return next(img for img in split.images.values() if img["file_name"] == file_name)


def move_image(source, target: dict, img: dict, names_to_ids: dict) -> None:
    """Append `img` of split `source` and its annotations to the COCO dict `target`, with fresh ids."""
    image_id = max((i["id"] for i in target["images"]), default=0) + 1
    next_ann = max((a["id"] for a in target["annotations"]), default=0) + 1
    target["images"].append({**img, "id": image_id})
    for ann in source.by_image[img["id"]]:
        name = source.categories[ann["category_id"]].get("name")
        if name not in names_to_ids:
            raise UserError(f"--fix-leaks: {img['file_name']} has a '{name}' box, a category the split it would "
                            f"move to does not have")
        target["annotations"].append({**ann, "id": next_ann, "image_id": image_id,
                                      "category_id": names_to_ids[name]})
        next_ann += 1


def remove_image(data: dict, image_id: int) -> None:
    data["images"] = [i for i in data["images"] if i["id"] != image_id]
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] != image_id]


def plan_moves(splits: list, leaks: list[dict], keep_in: str | None) -> tuple[dict, list[dict]]:
    """(new COCO dict per split name, one record per moved or dropped image)."""
    order = [s.name for s in splits]
    by_name = {s.name: s for s in splits}
    out = {s.name: copy.deepcopy(s.data) for s in splits}
    moves = []
    for group in leaks:
        home = keeper(group, order, keep_in)
        kept = {f for f, s in zip(group["images"], group["splits"]) if s == home}
        names_to_ids = {c.get("name"): cid for cid, c in by_name[home].categories.items()}
        for file_name, split in zip(group["images"], group["splits"]):
            if split == home:
                continue
            img = image_record(by_name[split], file_name)
            remove_image(out[split], img["id"])
            action = "dropped" if file_name in kept else "moved"
            if action == "moved":
                move_image(by_name[split], out[home], img, names_to_ids)
                kept.add(file_name)
            moves.append({"file_name": file_name, "from": split, "to": home, "action": action,
                          "near": sorted(f for f, s in zip(group["images"], group["splits"]) if s == home)})
    return out, moves


def fix_leaks(splits: list, leaks: list[dict], out_dir: Path, keep_in: str | None = None) -> list[dict]:
    """Write OUT_DIR/<split>.json for every split (atomically) with each leaked group in one split; print and
    return what moved."""
    names = [s.name for s in splits]
    if keep_in is not None and keep_in not in names:
        raise UserError(f"--keep-in {keep_in}: not one of the splits ({', '.join(names)})")
    targets = {name: out_dir / f"{name}.json" for name in names}
    for target in targets.values():
        check_not_input(target, *[s.path for s in splits])
    out, moves = plan_moves(splits, leaks, keep_in)
    for name, data in out.items():
        save_coco(targets[name], data)
    for move in moves:
        what = "moved to" if move["action"] == "moved" else "dropped, already in"
        print(f"  {move['from']}/{move['file_name']}: {what} {move['to']} (near {', '.join(move['near'])})")
    counts = ", ".join(f"{name} {len(data['images'])}" for name, data in out.items())
    print(f"fix-leaks: {len(moves)} images moved or dropped; wrote {len(out)} split files to {out_dir} ({counts})")
    return moves
