"""`merge`: several COCO files into one; categories unified by name, ids re-indexed.

Images with the same file_name are the same picture: their annotations are pooled (sizes must agree).
"""
from __future__ import annotations


from datasets.core.coco import check_not_input, index_coco, load_coco, new_coco, save_coco
from datasets.core.errors import UserError


def merge_categories(datasets: list[tuple[str, dict]]) -> tuple[list[dict], list[dict]]:
    """Unified categories and, per input, a map from its category id to the unified id.

    The first file keeps its category ids; names it lacks get the next free ids in order met.
    """
    for source, data in datasets:
        for cat in data["categories"]:
            if not isinstance(cat, dict) or not isinstance(cat.get("name"), str) or "id" not in cat:
                raise UserError(f"{source}: every category needs an id and a name, got {cat!r}")
    unified = {cat["name"]: dict(cat) for cat in datasets[0][1]["categories"]}
    next_id = 1 + max((cat["id"] for cat in unified.values()), default=0)
    maps = []
    for _source, data in datasets:
        for cat in data["categories"]:
            if cat["name"] not in unified:
                unified[cat["name"]] = {**cat, "id": next_id}
                next_id += 1
        maps.append({cat["id"]: unified[cat["name"]]["id"] for cat in data["categories"]})
    return sorted(unified.values(), key=lambda c: c["id"]), maps


def merge_coco(datasets: list[tuple[str, dict]]) -> dict:
    """One COCO dict from (source name, COCO dict) pairs."""
    categories, maps = merge_categories(datasets)
    images: dict[str, dict] = {}
    annotations = []
    for (source, data), cat_map in zip(datasets, maps):
        by_id, _, by_image = index_coco(data, source)
        for old_id, img in by_id.items():
            known = images.get(img["file_name"])
            if known is None:
                known = images[img["file_name"]] = {**img, "id": len(images) + 1}
            elif (known["width"], known["height"]) != (img["width"], img["height"]):
                raise UserError(f"{source}: image {old_id} ({img['file_name']}) is {img['width']}x{img['height']}, "
                                f"an earlier input says {known['width']}x{known['height']}")
            for ann in by_image[old_id]:
                annotations.append({**ann, "id": len(annotations) + 1, "image_id": known["id"],
                                    "category_id": cat_map[ann["category_id"]]})
    return new_coco(list(images.values()), annotations, categories)


def run(args) -> None:
    """CLI: python -m datasets merge."""
    if len(args.files) < 2:
        raise UserError("merge needs at least two input files")
    check_not_input(args.out, *args.files)
    datasets = [(str(path), load_coco(path)) for path in args.files]
    merged = merge_coco(datasets)
    save_coco(args.out, merged)
    print(f"wrote {args.out}: {len(merged['images'])} images, {len(merged['annotations'])} annotations, "
          f"{len(merged['categories'])} categories")
