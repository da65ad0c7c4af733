"""The label audit end to end: read the annotations, check the checkpoint's categories against them, predict on
every image not excluded, rank the issues (label_errors) and write issues.json, summary.json and the gallery."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from datasets.core.atomic import write_json
from datasets.core.coco import check_not_input, index_coco, load_coco, require_dir
from datasets.core.errors import UserError
from datasets.core.images import read_rgb
from detection.audit.gallery import write_each, write_gallery
from detection.audit.label_errors import ImageData, IssueOptions, find_issues
from detection.tracking.boxes import xywh_to_xyxy

GALLERY_SIZE = 24  # issues drawn in issues.png (the top of the list)
KINDS = ("missing", "wrong_class", "bad_box", "spurious")
LOW_SCORE = 0.05  # detections down to this score are asked for (s_same, s_any, partial boxes)


@dataclass
class AuditRun:
    checkpoint: str
    annotations: str
    images: str
    out: str
    exclude_images: str | None = None
    options: IssueOptions = field(default_factory=IssueOptions)
    gallery_each: bool = False
    device: str = "auto"
    batch_size: int = 8
    progress: bool = True


def category_differences(model: list[dict], data: list[dict]) -> str | None:
    """How two category lists differ by (id, name), in words, or None when they agree."""
    ours = {(int(c["id"]), c["name"]) for c in model}
    theirs = {(int(c["id"]), c.get("name")) for c in data}
    if ours == theirs:
        return None
    describe = lambda pairs: ", ".join(f"{i} {n}" for i, n in sorted(pairs)) or "nothing"  # noqa: E731
    return f"only in the checkpoint: {describe(ours - theirs)}; only in the file: {describe(theirs - ours)}"


def excluded_names(spec: str | None) -> set[str]:
    """File names to leave out: a COCO json (its images, e.g. the training split) or a text file, one a line."""
    if not spec:
        return set()
    path = Path(spec)
    if path.suffix.lower() == ".json":
        return {img.get("file_name") for img in load_coco(path)["images"]}
    if not path.is_file():
        raise UserError(f"--exclude-images {path}: no such file")
    return {line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}


def image_data(img: dict, anns: list[dict], detections: list[dict]) -> ImageData:
    """Labelled boxes, crowd regions and detections of one image in the form label_errors takes."""
    plain = [a for a in anns if not a.get("iscrowd")]
    crowd = [a for a in anns if a.get("iscrowd")]
    dets = sorted(detections, key=lambda d: -d["score"])
    return ImageData(img["file_name"], img["id"], xywh_to_xyxy([a["bbox"] for a in plain]),
                     np.array([a["category_id"] for a in plain], dtype=np.int64), [a.get("id") for a in plain],
                     xywh_to_xyxy([a["bbox"] for a in crowd]), xywh_to_xyxy([d["bbox"] for d in dets]),
                     np.array([d["score"] for d in dets], dtype=np.float64),
                     np.array([d["category_id"] for d in dets], dtype=np.int64))


def predict_images(predictor, images_dir: Path, records: list[dict], run: AuditRun) -> tuple[dict, list[dict]]:
    """Detections per image id (down to LOW_SCORE), and the images that could not be read or whose size differs
    from the annotations."""
    low = min(LOW_SCORE, run.options.score_threshold)
    detections, unreadable = {}, []
    bar = tqdm(total=len(records), desc="audit", disable=None if run.progress else True)
    for start in range(0, len(records), run.batch_size):
        batch, pixels = [], []
        for img in records[start : start + run.batch_size]:
            try:
                image = read_rgb(images_dir / img["file_name"])
            except UserError as exc:
                unreadable.append({"file_name": img["file_name"], "error": str(exc)})
                continue
            if image.shape[:2] != (img["height"], img["width"]):
                unreadable.append({"file_name": img["file_name"], "error": f"file is {image.shape[1]}x"
                                   f"{image.shape[0]}, the annotations say {img['width']}x{img['height']}"})
                continue
            batch.append(img)
            pixels.append(image)
        for img, found in zip(batch, predictor.predict(pixels, score_threshold=low, max_detections=100)):
            detections[img["id"]] = found
        bar.update(len(records[start : start + run.batch_size]))
    bar.close()
    return detections, unreadable


def audit_labels(run: AuditRun) -> tuple[dict, list[dict]]:
    """Run the audit; returns the summary (also written to OUT/summary.json) and the ranked issues."""
    from detection.inference.predictor import Predictor  # late: torch and the model families

    images_dir = require_dir(run.images, "--images")
    data = load_coco(run.annotations)
    images, categories, by_image = index_coco(data, run.annotations)
    out = Path(run.out)
    check_not_input(out, run.annotations, images_dir)
    excluded = excluded_names(run.exclude_images)
    predictor = Predictor.from_checkpoint(run.checkpoint, run.device)
    differences = category_differences(predictor.categories, data["categories"])
    if differences:
        raise UserError(f"{run.annotations}: categories differ from the checkpoint {run.checkpoint}'s ({differences})")
    records = [img for _, img in sorted(images.items()) if img["file_name"] not in excluded]
    if not records:
        raise UserError(f"{run.annotations}: no images left to audit ({len(images)} images, all excluded)")
    detections, unreadable = predict_images(predictor, images_dir, records, run)
    names = {cid: cat.get("name", str(cid)) for cid, cat in categories.items()}
    items = [image_data(img, by_image[img["id"]], detections[img["id"]]) for img in records if img["id"] in detections]
    issues, rel = find_issues(items, names, run.options)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "issues.json", issues, indent=1)
    counts = {kind: sum(i["kind"] == kind for i in issues) for kind in KINDS}
    summary = {"images": len(images), "audited": len(items), "excluded": len(images) - len(records),
               "unreadable": unreadable, "issues": len(issues), "kinds": counts, "model": rel.to_dict(names),
               "checkpoint": str(run.checkpoint), "annotations": str(run.annotations),
               "options": {k: getattr(run.options, k) for k in vars(run.options)}}
    write_json(out / "summary.json", summary, indent=1)
    summary["gallery"] = write_gallery(issues[:GALLERY_SIZE], images_dir, out / "issues.png")
    if run.gallery_each:
        summary["pictures"] = write_each(issues, images_dir, out / "issues")
    return summary, issues


def print_summary(summary: dict, issues_path: os.PathLike, top: list[dict]) -> None:
    kinds = ", ".join(f"{k} {v}" for k, v in summary["kinds"].items())
    print(f"audited {summary['audited']} of {summary['images']} images (excluded {summary['excluded']}, "
          f"unreadable {len(summary['unreadable'])}): {summary['issues']} issues ({kinds})")
    for item in top:
        model = f", model: {item['model_category']} {item['model_score']:.2f}" if item.get("model_category") else ""
        print(f"  #{item['rank']} {item['kind']} {item['score']:.3f} {item['file_name']} {item['category']} "
              f"{item['bbox']}{model}")
    print(f"wrote {issues_path}" + (", issues.png" if summary.get("gallery") else ""))
