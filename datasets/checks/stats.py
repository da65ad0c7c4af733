"""`stats`: counts of a COCO file (per class, box sizes, objects per image) and an overview plot.

Box sizes use COCO's buckets: small < 32^2 pixels of area <= medium < 96^2 <= large.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np

from datasets.core.coco import check_not_input, index_coco, load_coco
from datasets.core.errors import UserError

SMALL, LARGE = 32**2, 96**2


def box_area(ann: dict) -> float:
    area = ann.get("area")
    return float(area) if isinstance(area, (int, float)) else float(ann["bbox"][2] * ann["bbox"][3])


def compute_stats(data: dict, source: str = "input") -> dict:
    """A JSON-ready summary of a COCO dict."""
    images, categories, by_image = index_coco(data, source)
    anns = data["annotations"]
    names = {cid: cat.get("name", str(cid)) for cid, cat in categories.items()}
    per_class = Counter(names[a["category_id"]] for a in anns)
    images_per_class = Counter(names[c] for img in by_image.values() for c in {a["category_id"] for a in img})
    areas = [box_area(a) for a in anns]
    per_image = [len(v) for v in by_image.values()]
    return {
        "images": len(images),
        "annotations": len(anns),
        "crowd": sum(1 for a in anns if a.get("iscrowd")),
        "categories": len(categories),
        "per_class": {names[c]: per_class[names[c]] for c in sorted(categories)},
        "images_per_class": {names[c]: images_per_class[names[c]] for c in sorted(categories)},
        "box_sizes": {"small": sum(a < SMALL for a in areas), "medium": sum(SMALL <= a < LARGE for a in areas),
                      "large": sum(a >= LARGE for a in areas)},
        "per_image": {"min": min(per_image, default=0), "mean": round(float(np.mean(per_image)) if per_image else 0.0, 3),
                      "max": max(per_image, default=0), "empty_images": per_image.count(0)},
        "image_sizes": dict(Counter(f"{img['width']}x{img['height']}" for img in images.values()).most_common(5)),
    }


def print_stats(stats: dict) -> None:
    """The summary as a short readable table."""
    print(f"images: {stats['images']}  annotations: {stats['annotations']}  crowd: {stats['crowd']}  "
          f"categories: {stats['categories']}")
    width = max([len(n) for n in stats["per_class"]] + [8])
    print(f"{'category':<{width}}  annotations  images")
    for name, count in stats["per_class"].items():
        print(f"{name:<{width}}  {count:>11}  {stats['images_per_class'][name]:>6}")
    sizes = stats["box_sizes"]
    print(f"box sizes: small (<32^2) {sizes['small']}, medium {sizes['medium']}, large (>=96^2) {sizes['large']}")
    per = stats["per_image"]
    print(f"annotations per image: min {per['min']}, mean {per['mean']}, max {per['max']}; "
          f"images without annotations: {per['empty_images']}")
    print("image sizes: " + ", ".join(f"{size} ({n})" for size, n in stats["image_sizes"].items()))


def run(args) -> None:
    """CLI: python -m datasets stats."""
    data = load_coco(args.file)
    stats = compute_stats(data, str(args.file))
    if args.json:
        print(json.dumps(stats))
    else:
        print_stats(stats)
    if args.plot:
        from datasets.view.plot import FIGURE_SUFFIXES, plot_stats

        if Path(args.plot).suffix.lower() not in FIGURE_SUFFIXES:
            raise UserError(f"--plot {args.plot}: use a .png, .jpg, .pdf or .svg file name")
        check_not_input(args.plot, args.file)
        plot_stats(data, stats, args.plot)
        print(f"wrote {args.plot}")
