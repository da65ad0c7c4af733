"""Benchmark of the dataset audit on a synthetic set with injected faults; prints one JSON line.

Duplicates: train images copied into val re-encoded (JPEG q60, resized by 0.9) or cropped (3% a side, q90), and
exact copies inside train; reported: recall of those pairs and pairs reported that were not injected. Label errors:
a tiny SSD trained on the clean train split audits val (out of sample) after K faults were injected there (boxes
dropped, classes changed, boxes shifted by 40% of their size, boxes added on background); reported: precision of
the top K issues, recall of the faults in the top K and anywhere, per kind, and the time per image of both audits.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from datasets.checks.audit import AuditOptions, audit, load_splits
from datasets.core.coco import save_coco
from datasets.synthetic.shapes import make_shapes

ROOT = Path(__file__).resolve().parents[1]


def make_split(root: Path, name: str, count: int, seed: int, size: int) -> dict:
    """A synthetic split under root/name/images, its file names relative to root."""
    make_shapes(root / name, count, seed=seed, image_size=size, min_size=size // 6, max_size=size // 2,
                max_objects=3)
    data = json.loads((root / name / "annotations.json").read_text())
    for img in data["images"]:
        img["file_name"] = f"{name}/images/{img['file_name']}"
    return data


def add_copy(data: dict, source: dict, image: dict, file_name: str, size: tuple[int, int], scale: float,
             offset: float = 0.0) -> None:
    """Append an image record (and its source's boxes, scaled) to a COCO dict."""
    image_id = max(i["id"] for i in data["images"]) + 1
    data["images"].append({"id": image_id, "file_name": file_name, "width": size[0], "height": size[1]})
    next_id = max(a["id"] for a in data["annotations"]) + 1
    for ann in [a for a in source["annotations"] if a["image_id"] == image["id"]]:
        x, y, w, h = ann["bbox"]
        data["annotations"].append({**ann, "id": next_id, "image_id": image_id, "segmentation": [],
                                    "bbox": [(x - offset) * scale, (y - offset) * scale, w * scale, h * scale],
                                    "area": w * h * scale * scale})
        next_id += 1


def inject_duplicates(root: Path, train: dict, val: dict, count: int, rng) -> list[tuple[str, str, str]]:
    """Copies of train images: re-encoded into val, cropped into val, exact into train; returns (kind, a, b)."""
    picks = rng.choice(len(train["images"]), 3 * count, replace=False)
    pairs = []
    for k, index in enumerate(picks):
        img = train["images"][int(index)]
        pixels = cv2.imread(str(root / img["file_name"]))
        height, width = pixels.shape[:2]
        kind = ("reencoded", "cropped", "exact")[k // count]
        if kind == "reencoded":
            name, scale, offset = f"val/images/copy_{k}.jpg", 0.9, 0
            out = cv2.resize(pixels, (round(width * 0.9), round(height * 0.9)), interpolation=cv2.INTER_AREA)
            params = [cv2.IMWRITE_JPEG_QUALITY, 60]
        elif kind == "cropped":
            cut = round(0.03 * width)
            name, scale, offset, out = f"val/images/crop_{k}.jpg", 1.0, cut, pixels[cut:-cut, cut:-cut]
            params = [cv2.IMWRITE_JPEG_QUALITY, 90]
        else:
            name, scale, offset, out, params = f"train/images/again_{k}.png", 1.0, 0, pixels, []
        cv2.imwrite(str(root / name), out, params)
        add_copy(val if kind != "exact" else train, train, img, name, (out.shape[1], out.shape[0]), scale, offset)
        pairs.append((kind, img["file_name"], name))
    return pairs


def duplicate_scores(report: dict, injected: list[tuple[str, str, str]]) -> dict:
    """Recall of the injected pairs (overall and per kind) and reported pairs that were not injected."""
    together = set()
    for group in report["leaks"] + report["duplicates"]:
        names = group["images"]
        together |= {frozenset((a, b)) for i, a in enumerate(names) for b in names[i + 1:] if a != b}
    truth = {frozenset((a, b)) for _, a, b in injected}
    per_kind = {}
    for kind in ("reencoded", "cropped", "exact"):
        pairs = [frozenset((a, b)) for k, a, b in injected if k == kind]
        per_kind[kind] = round(sum(p in together for p in pairs) / max(1, len(pairs)), 3)
    return {"duplicate_recall": round(len(truth & together) / len(truth), 3), "duplicate_recall_by_kind": per_kind,
            "false_pairs": len(together - truth), "leak_groups": len(report["leaks"])}


def inject_label_faults(val: dict, per_kind: int, size: int, rng) -> list[dict]:
    """Faults in distinct original val images: (kind the audit should name, file, the box to find)."""
    by_image: dict = {}
    for ann in val["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    names = {img["id"]: img["file_name"] for img in val["images"]}
    candidates = [i for i in sorted(by_image) if "/images/0" in names[i]]
    chosen = rng.choice(candidates, 4 * per_kind, replace=False)
    faults = []
    for k, image_id in enumerate(chosen):
        ann = max(by_image[int(image_id)], key=lambda a: a["area"])
        kind = ("missing", "wrong_class", "bad_box", "spurious")[k // per_kind]
        if kind == "missing":
            val["annotations"].remove(ann)
        elif kind == "wrong_class":
            ann["category_id"] = ann["category_id"] % 3 + 1
        elif kind == "bad_box":
            x, y, w, h = ann["bbox"]
            dx = 0.4 * w if x + 1.4 * w <= size else -0.4 * w  # towards the side with room
            dy = 0.4 * h if y + 1.4 * h <= size else -0.4 * h
            ann["bbox"] = [max(0.0, x + dx), max(0.0, y + dy), w, h]
        else:
            ann = added_box(val, int(image_id), by_image[int(image_id)], size, rng)
        faults.append({"kind": kind, "file_name": names[int(image_id)], "box": list(ann["bbox"])})
    return faults


def added_box(val: dict, image_id: int, anns: list[dict], size: int, rng) -> dict:
    """A labelled box over background only (away from the image's objects)."""
    side = size // 4
    for _ in range(200):
        x, y = (float(v) for v in rng.uniform(0, size - side, 2))
        if all(iou([x, y, side, side], a["bbox"]) == 0 for a in anns):
            break
    ann = {"id": max(a["id"] for a in val["annotations"]) + 1, "image_id": image_id, "category_id": 1,
           "bbox": [x, y, side, side], "area": side * side, "iscrowd": 0, "segmentation": []}
    val["annotations"].append(ann)
    return ann


def iou(a, b) -> float:
    inter = (max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
             * max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])))
    return inter / max(a[2] * a[3] + b[2] * b[3] - inter, 1e-9)


def label_scores(issues: list[dict], faults: list[dict]) -> dict:
    """Precision of the top K, recall of the faults in the top K and anywhere, and per kind (right kind named)."""
    def hits(fault, pool):
        return [i for i in pool if i["file_name"] == fault["file_name"]
                and max(iou(i["bbox"], fault["box"]), iou(i.get("model_bbox") or i["bbox"], fault["box"])) > 0.3]

    k = len(faults)
    top = issues[:k]
    true_top = sum(any(hits(f, [i]) for f in faults) for i in top)
    found_top = [bool(hits(f, top)) for f in faults]
    kinds = {}
    for kind in ("missing", "wrong_class", "bad_box", "spurious"):
        mine = [f for f in faults if f["kind"] == kind]
        kinds[kind] = sum(any(i["kind"] == kind for i in hits(f, top)) for f in mine)
    return {"k": k, "label_precision_at_k": round(true_top / k, 3), "label_recall_at_k": round(np.mean(found_top), 3),
            "label_recall_any_rank": round(np.mean([bool(hits(f, issues)) for f in faults]), 3),
            "top_k_right_kind": kinds, "issues": len(issues)}


def hash_ms_at(root: Path, side: int, count: int = 50) -> float:
    """Hashing time per image (read + hash, the audit's per-image work) for JPEGs of side x side pixels."""
    from datasets.checks.hashes import compute_signatures

    folder = root / f"big{side}"
    folder.mkdir()
    sources = sorted((root / "val" / "images").glob("0*.png"))[:count]
    paths = []
    for k, src in enumerate(sources):
        paths.append(folder / f"{k}.jpg")
        image = cv2.resize(cv2.imread(str(src)), (side, side), interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(paths[-1]), image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    start = time.perf_counter()
    compute_signatures(paths, progress=False)
    return round(1000 * (time.perf_counter() - start) / len(paths), 2)


def train_detector(root: Path, epochs: int, size: int, device: str) -> tuple[Path, dict, float]:
    from detection.config import load_config
    from detection.tasks import build_trainer

    items = {"output_dir": str(root / "run"), "device": device, "train.epochs": str(epochs), "train.plots": "false",
             "train.eval_every": "0", "train.log_every": "100000", "train.batch_size": "16", "train.optimizer": "adamw",
             "train.lr": "0.003", "data.num_workers": "0", "data.input_size": str(size),
             "data.train.annotations": str(root / "train_clean.json"), "data.train.images": str(root),
             "data.val.annotations": str(root / "val_clean.json"), "data.val.images": str(root),
             "model.neck": "ssd_extra", "model.neck_channels": "32", "model.neck_levels": "4",
             "model.ssd.min_scale": "0.2",
             "model.ssd.max_scale": "0.8"}
    start = time.perf_counter()
    metrics = build_trainer(load_config(ROOT / "configs" / "ssd_tiny.yaml", [f"{k}={v}" for k, v in items.items()]),
                      progress=False).fit()
    return root / "run" / "best.pt", metrics, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=300, help="train images (default 300)")
    parser.add_argument("--val", type=int, default=100, help="val images (default 100)")
    parser.add_argument("--size", type=int, default=96, help="image side (default 96)")
    parser.add_argument("--copies", type=int, default=10, help="duplicates of each kind (default 10)")
    parser.add_argument("--faults", type=int, default=5, help="label faults of each kind (default 5)")
    parser.add_argument("--epochs", type=int, default=30, help="detector training epochs (default 30)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: on a shared 2-core "
                        "machine two threads wait on each other many times slower)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        train = make_split(root, "train", args.train, 1000 + args.seed, args.size)
        val = make_split(root, "val", args.val, 2000 + args.seed, args.size)
        save_coco(root / "train_clean.json", train)
        save_coco(root / "val_clean.json", val)
        injected = inject_duplicates(root, train, val, args.copies, rng)
        faults = inject_label_faults(val, args.faults, args.size, rng)
        save_coco(root / "train.json", train)
        save_coco(root / "val.json", val)
        splits = load_splits([("train", root / "train.json"), ("val", root / "val.json")])
        start = time.perf_counter()
        report = audit(splits, root, AuditOptions(), progress=False)
        data_seconds = time.perf_counter() - start
        images = report["summary"]["images"]
        hash_ms = {f"{side}px": hash_ms_at(root, side) for side in (640, 1920)}
        checkpoint, metrics, train_seconds = train_detector(root, args.epochs, args.size, args.device)
        from detection.audit.label_errors import IssueOptions
        from detection.audit.runner import AuditRun, audit_labels

        start = time.perf_counter()
        copies = root / "copies.txt"  # the duplicates' boxes were moved with them: audit the original images
        copies.write_text("\n".join(name for _, _, name in injected) + "\n")
        summary, issues = audit_labels(AuditRun(str(checkpoint), str(root / "val.json"), str(root),
                                                str(root / "audit"), str(copies), IssueOptions(),
                                                device=args.device, progress=False))
        label_seconds = time.perf_counter() - start
    print(json.dumps({
        "bench": "audit", "train_images": args.train, "val_images": args.val, "size": args.size,
        **duplicate_scores(report, injected), "data_audit_ms_per_image": round(1000 * data_seconds / images, 2),
        "hash_ms_per_jpeg": hash_ms,
        **label_scores(issues, faults), "label_audit_ms_per_image": round(1000 * label_seconds / summary["audited"], 2),
        "detector": {"family": "ssd tiny", "epochs": args.epochs, "val_mAP50": metrics.get("bbox_mAP_50"),
                     "train_s": round(train_seconds, 1)}, "device": args.device}))


if __name__ == "__main__":
    main()
