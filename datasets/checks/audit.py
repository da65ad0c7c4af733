"""`audit`: what a valid COCO dataset can still get wrong, over all its splits at once: the same picture in two
splits (leaks) or twice in one (duplicates), found by perceptual hash; class imbalance; box sizes and shapes.

The report (JSON) lists leaks first; `--fix-leaks` writes split files with each leaked group in one split only.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from datasets.checks import hashes
from datasets.checks.stats import LARGE, SMALL, box_area
from datasets.core.atomic import write_json
from datasets.core.coco import check_not_input, index_coco, load_coco, require_dir
from datasets.core.errors import UserError

MIN_INSTANCES = 10  # default of --min-instances
EXAMPLES = 20  # small boxes listed by name in the report (all are counted)


@dataclass
class Split:
    """One --split NAME=FILE: its COCO dict, indexed."""

    name: str
    path: Path
    data: dict
    images: dict
    categories: dict
    by_image: dict


@dataclass
class Entry:
    """One image record of one split (the same file in two splits is two entries)."""

    split: str
    image_id: int
    file_name: str


def parse_splits(args: list[str]) -> list[tuple[str, Path]]:
    """(name, file) of each --split NAME=FILE; UserError for a malformed or repeated one."""
    pairs: list[tuple[str, Path]] = []
    for arg in args:
        name, sep, file = arg.partition("=")
        if not sep or not name or not file:
            raise UserError(f"--split {arg}: expected NAME=FILE, e.g. --split train=train.json")
        if name in [n for n, _ in pairs]:
            raise UserError(f"--split {name}: given twice")
        pairs.append((name, Path(file)))
    if not pairs:
        raise UserError("give at least one --split NAME=FILE")
    return pairs


def load_splits(pairs: list[tuple[str, Path]]) -> list[Split]:
    """Load and index each split; UserError (one line) for an empty split or a broken file."""
    splits = []
    for name, path in pairs:
        data = load_coco(path)
        if not data["images"]:
            raise UserError(f"--split {name}={path}: the split is empty (no images)")
        splits.append(Split(name, path, data, *index_coco(data, str(path))))
    return splits


def entries_of(splits: list[Split]) -> list[Entry]:
    return [Entry(s.name, image_id, img["file_name"]) for s in splits for image_id, img in s.images.items()]


def group_record(entries: list[Entry], members: list[int], distance: int) -> dict:
    return {"images": [entries[m].file_name for m in members], "splits": [entries[m].split for m in members],
            "distance": distance}


def find_duplicates(entries: list[Entry], images_dir: Path, max_distance: int,
                    progress: bool = True) -> tuple[list[dict], list[dict], list[dict]]:
    """(leaks, duplicates within a split, unreadable images) of the entries; each file is hashed once."""
    files = sorted({e.file_name for e in entries})
    column = {name: index for index, name in enumerate(files)}
    sigs = hashes.compute_signatures([images_dir / name for name in files], progress=progress)
    per_entry = np.array([column[e.file_name] for e in entries], dtype=np.int64)
    entry_sigs = hashes.Signatures(sigs.bits[per_entry], sigs.strong[per_entry], sigs.thumbs[per_entry],
                                   {i: sigs.errors[int(c)] for i, c in enumerate(per_entry) if int(c) in sigs.errors})
    groups = hashes.group_pairs(hashes.near_pairs(entry_sigs, max_distance))
    records = [group_record(entries, g, hashes.group_distance(entry_sigs, g)) for g in groups]
    order = sorted(range(len(records)), key=lambda k: (records[k]["distance"], records[k]["images"]))
    leaks = [records[k] for k in order if len(set(records[k]["splits"])) > 1]
    duplicates = [records[k] for k in order if len(set(records[k]["splits"])) == 1]
    unreadable = [{"split": entries[i].split, "file_name": entries[i].file_name, "error": message}
                  for i, message in sorted(entry_sigs.errors.items())]
    return leaks, duplicates, unreadable


def quantiles(values: list[float]) -> dict:
    if not values:
        return {}
    q = np.quantile(values, [0.0, 0.1, 0.5, 0.9, 1.0])
    return {key: round(float(v), 3) for key, v in zip(("min", "p10", "median", "p90", "max"), q)}


def model_side(ann: dict, img: dict, input_size: int | None) -> float:
    """sqrt(w * h) of a box, in the model's pixels when letterboxed to input_size (else the image's)."""
    w, h = ann["bbox"][2], ann["bbox"][3]
    scale = input_size / max(img["width"], img["height"]) if input_size else 1.0
    return float(np.sqrt(max(w, 0) * max(h, 0))) * scale


def class_table(splits: list[Split]) -> dict:
    """Per class name: instances, images, per split, COCO size ranges, aspect ratios (w / h), crowd regions."""
    names = list(dict.fromkeys(c.get("name", str(cid)) for s in splits for cid, c in sorted(s.categories.items())))
    table = {n: {"instances": 0, "images": 0, "crowd": 0,
                 "per_split": {s.name: {"instances": 0, "images": 0} for s in splits},
                 "sizes": {"small": 0, "medium": 0, "large": 0}} for n in names}
    ratios: dict[str, list[float]] = {n: [] for n in names}
    for s in splits:
        for anns in s.by_image.values():
            seen = set()
            for ann in anns:
                name = s.categories[ann["category_id"]].get("name", str(ann["category_id"]))
                row = table[name]
                if ann.get("iscrowd"):
                    row["crowd"] += 1
                    continue
                area, (w, h) = box_area(ann), ann["bbox"][2:]
                row["instances"] += 1
                row["per_split"][s.name]["instances"] += 1
                row["sizes"]["small" if area < SMALL else "medium" if area < LARGE else "large"] += 1
                if w > 0 and h > 0:
                    ratios[name].append(w / h)
                seen.add(name)
            for name in seen:
                table[name]["images"] += 1
                table[name]["per_split"][s.name]["images"] += 1
    for name, row in table.items():
        row["aspect_ratio"] = quantiles(ratios[name])
    return table


def small_boxes(splits: list[Split], min_box: float, input_size: int | None) -> dict:
    """Non-crowd boxes whose side sqrt(w * h), letterboxed to input_size, is under min_box pixels."""
    found, per_class = [], {}
    for s in splits:
        for image_id, anns in s.by_image.items():
            img = s.images[image_id]
            for ann in anns:
                side = model_side(ann, img, input_size)
                if ann.get("iscrowd") or side >= min_box:
                    continue
                name = s.categories[ann["category_id"]].get("name", str(ann["category_id"]))
                per_class[name] = per_class.get(name, 0) + 1
                found.append({"split": s.name, "file_name": img["file_name"], "category": name,
                              "bbox": ann["bbox"], "side": round(side, 2)})
    found.sort(key=lambda f: f["side"])
    return {"min_box": min_box, "input_size": input_size, "count": len(found), "per_class": per_class,
            "examples": found[:EXAMPLES]}


def rare_classes(table: dict, min_instances: int) -> list[dict]:
    return [{"category": name, "instances": row["instances"],
             "per_split": {k: v["instances"] for k, v in row["per_split"].items()}}
            for name, row in table.items() if row["instances"] < min_instances]


@dataclass
class AuditOptions:
    min_instances: int = MIN_INSTANCES
    min_box: float | None = None
    input_size: int | None = None
    max_distance: int = hashes.MAX_DISTANCE

    def check(self) -> None:
        if self.min_instances < 0:
            raise UserError(f"--min-instances must be 0 or more, got {self.min_instances}")
        if self.min_box is not None and self.min_box <= 0:
            raise UserError(f"--min-box must be positive, got {self.min_box}")
        if self.input_size is not None and self.input_size < 1:
            raise UserError(f"--input-size must be positive, got {self.input_size}")
        if not 0 <= self.max_distance <= 64:
            raise UserError(f"--max-distance must be within 0..64 (bits of the hash), got {self.max_distance}")


def audit(splits: list[Split], images_dir: Path, options: AuditOptions, progress: bool = True) -> dict:
    """The audit report of the splits (JSON-ready): leaks first, then duplicates, unreadable images, classes."""
    options.check()
    entries = entries_of(splits)
    leaks, duplicates, unreadable = find_duplicates(entries, images_dir, options.max_distance, progress)
    table = class_table(splits)
    flags: dict = {"rare_classes": rare_classes(table, options.min_instances), "min_instances": options.min_instances}
    if options.min_box is not None:
        flags["small_boxes"] = small_boxes(splits, options.min_box, options.input_size)
    leaked = sum(len(g["images"]) for g in leaks)
    return {
        "summary": {"images": len(entries), "splits": {s.name: len(s.images) for s in splits},
                    "annotations": sum(len(s.data["annotations"]) for s in splits), "leak_groups": len(leaks),
                    "leaked_images": leaked, "duplicate_groups": len(duplicates), "unreadable": len(unreadable),
                    "max_distance": options.max_distance},
        "leaks": leaks,
        "duplicates": duplicates,
        "unreadable": unreadable,
        "classes": table,
        "flags": flags,
        "files": {s.name: str(s.path) for s in splits},
    }


def print_report(report: dict) -> None:
    """A few readable lines: what the report holds."""
    summary = report["summary"]
    per = ", ".join(f"{name} {count}" for name, count in summary["splits"].items())
    print(f"audited {summary['images']} images in {len(summary['splits'])} splits ({per}); "
          f"unreadable: {summary['unreadable']}")
    print(f"leaks: {summary['leak_groups']} groups of near-duplicates across splits "
          f"({summary['leaked_images']} images)")
    for group in report["leaks"][:5]:
        print("  " + "  ~  ".join(f"{s}/{f}" for s, f in zip(group["splits"], group["images"]))
              + f"  (distance {group['distance']})")
    print(f"duplicates within a split: {summary['duplicate_groups']} groups")
    for name, row in report["classes"].items():
        sizes = row["sizes"]
        print(f"  {name}: {row['instances']} instances in {row['images']} images (small {sizes['small']}, "
              f"medium {sizes['medium']}, large {sizes['large']})")
    flags = report["flags"]
    if flags["rare_classes"]:
        print(f"classes under {flags['min_instances']} instances: "
              + ", ".join(f"{r['category']} ({r['instances']})" for r in flags["rare_classes"]))
    if "small_boxes" in flags:
        small = flags["small_boxes"]
        where = f" at input size {small['input_size']}" if small["input_size"] else ""
        print(f"boxes under {small['min_box']:g} px{where}: {small['count']}")


def run(args) -> None:
    """CLI: python -m datasets audit --split NAME=FILE ... --images DIR --out REPORT.json."""
    images_dir = require_dir(args.images, "--images")
    splits = load_splits(parse_splits(args.split))
    inputs = [s.path for s in splits]
    check_not_input(args.out, *inputs)
    options = AuditOptions(args.min_instances, args.min_box, args.input_size, args.max_distance)
    report = audit(splits, images_dir, options)
    print_report(report)
    if args.fix_leaks:
        from datasets.checks.audit_fix import fix_leaks

        moves = fix_leaks(splits, report["leaks"], Path(args.fix_leaks), args.keep_in)
        report["fix_leaks"] = {"out": str(args.fix_leaks), "moves": moves}
    write_json(args.out, report, indent=1)
    print(f"wrote {args.out}")
    if args.plot:
        from datasets.view.audit_plot import plot_audit

        check_not_input(args.plot, *inputs)
        plot_audit(report, splits_sides(splits), images_dir, args.plot)
        print(f"wrote {args.plot}")


def splits_sides(splits: list[Split]) -> dict[str, list[float]]:
    """sqrt(area) of every non-crowd box, per split (the plot's box-size histogram)."""
    return {s.name: [float(np.sqrt(max(box_area(a), 0.0))) for a in s.data["annotations"] if not a.get("iscrowd")]
            for s in splits}
