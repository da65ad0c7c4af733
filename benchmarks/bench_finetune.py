"""Fine-tuning against training from scratch on 40 images of new classes, and the import's equality; one JSON line.

The source detector trains on glyphs where only the digits 0-4 are annotated (`--source-images`, for
`--source-minutes` of this machine). The target set annotates only the digits 5-9, classes the source never
learned (the other digits stay in its images, unannotated, as objects a COCO model was never asked to find stay
in yours): `--train` images (40) to learn from and `--val` held-out images. The same config then trains twice on
the target for the same `--epochs`: from the source checkpoint (`model.pretrained`: every tensor that fits, the
class rows fresh) and from scratch. Both mAPs and their ratio are reported, with each run's curve.
The import equality: torchvision's fasterrcnn_mobilenet_v3_large_320_fpn with real-looking weights (made here, no
download) against its import run by our Predictor on non-square photos: the largest box and score difference.
Usage: python benchmarks/bench_finetune.py [--config faster_rcnn_tiny.yaml] [--epochs 24] [--plot finetune.png]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from bench_race import curve, draw  # noqa: E402
from datasets.synthetic.glyphs import CATEGORY_NAMES, make_glyphs  # noqa: E402
from detection.config import load_config  # noqa: E402
from detection.tasks import build_trainer  # noqa: E402

SIZE = 320
SOURCE_CLASSES, TARGET_CLASSES = CATEGORY_NAMES[:5], CATEGORY_NAMES[5:]
IMPORTED = "fasterrcnn_mobilenet_v3_large_320_fpn"


def keep_classes(annotations: Path, names: tuple[str, ...]) -> Path:
    """A copy of a COCO file (beside it) annotating only the categories `names`, numbered 1..len(names)."""
    data = json.loads(annotations.read_text())
    ids = {c["id"]: i + 1 for i, c in enumerate(c for c in data["categories"] if c["name"] in names)}
    data["categories"] = [{**c, "id": ids[c["id"]]} for c in data["categories"] if c["id"] in ids]
    data["annotations"] = [{**a, "category_id": ids[a["category_id"]]} for a in data["annotations"]
                           if a["category_id"] in ids]
    out = annotations.with_name(f"{annotations.stem}_{'_'.join(names)}.json")
    out.write_text(json.dumps(data))
    return out


def build_data(root: Path, source: int, train: int, val: int) -> dict[str, Path]:
    """Source train/val (digits 0-4) and target train/val (digits 5-9), each rendered with its own seed."""
    made = {name: make_glyphs(root / name, count, seed=seed) for name, count, seed in
            [("source", source, 10), ("source_val", 100, 11), ("train", train, 12), ("val", val, 13)]}
    return {name: keep_classes(path, SOURCE_CLASSES if name.startswith("source") else TARGET_CLASSES)
            for name, path in made.items()}


def run(config: str, name: str, train: Path, val: Path, out: Path, extra: dict) -> tuple[dict, Path]:
    """Train `config` on a split, evaluate on another; the row and the run's folder."""
    items = {"data.input_size": SIZE, "data.num_workers": 0, "data.augment.hflip": 0.0, "output_dir": out / name,
             "data.train.annotations": train, "data.train.images": train.parent / "images",
             "data.val.annotations": val, "data.val.images": val.parent / "images", **extra}
    cfg = load_config(ROOT / "configs" / config, [f"{k}={v}" for k, v in items.items()])
    trainer = build_trainer(cfg, progress=False)
    metrics = trainer.fit()
    row = {"run": name, "epochs": trainer.epoch, "train_seconds": round(trainer.seconds, 1),
           "bbox_mAP": round(metrics.get("bbox_mAP", 0.0), 4), "bbox_mAP_50": round(metrics.get("bbox_mAP_50", 0.0), 4),
           "curve": curve(out / name / "metrics.jsonl")}
    first = json.loads((out / name / "metrics.jsonl").read_text().splitlines()[0])
    if first.get("type") == "pretrained":
        row["pretrained"] = {k: first[k] for k in ("loaded", "tensors", "class_rows_kept", "new_classes", "fresh")}
    return row, out / name


def photos(count: int, height: int, width: int) -> list[np.ndarray]:
    """Non-square uint8 RGB pictures with flat coloured boxes (the same kind the import tests use)."""
    from weights_files import pictures

    return [(p.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8) for p in pictures(count, height, width, 3)]


@torch.no_grad()
def import_equality(work: Path) -> dict:
    """torchvision's model and our Predictor of its import on the same photos: counts, largest differences."""
    from torchvision.models import get_model

    from detection.inference.predictor import Predictor
    from detection.weights.torchvision_import import import_torchvision
    from weights_files import torchvision_file

    file = torchvision_file(IMPORTED, work / "tv" / f"{IMPORTED}.pth")
    theirs = get_model(IMPORTED, weights=None, weights_backbone=None, num_classes=91).eval()
    theirs.load_state_dict(torch.load(file, weights_only=True))
    import_torchvision(IMPORTED, work / "imported.pt", file=file)
    ours = Predictor.from_checkpoint(work / "imported.pt", "cpu")
    box = score = 0.0
    counts = []
    for image in photos(3, 240, 400):
        want = theirs([torch.from_numpy(image).permute(2, 0, 1).float() / 255])[0]
        got = ours.predict([image])[0]
        counts.append((len(want["boxes"]), len(got)))
        if len(got) != len(want["boxes"]):
            continue
        boxes = torch.tensor([[x, y, x + w, y + h] for x, y, w, h in (d["bbox"] for d in got)]).reshape(-1, 4)
        box = max(box, (boxes - want["boxes"]).abs().max().item() if len(got) else 0.0)
        score = max(score, max((abs(d["score"] - s) for d, s in zip(got, want["scores"].tolist())), default=0.0))
    return {"model": IMPORTED, "photo_size": [240, 400], "detections_torchvision_ours": counts,
            "largest_box_difference_px": round(box, 6), "largest_score_difference": round(score, 8)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="faster_rcnn_tiny.yaml", help="a file of configs/")
    parser.add_argument("--source-images", type=int, default=600)
    parser.add_argument("--source-minutes", type=float, default=6.0)
    parser.add_argument("--train", type=int, default=40)
    parser.add_argument("--val", type=int, default=150)
    parser.add_argument("--epochs", type=int, default=24, help="of the target runs, equal for both")
    parser.add_argument("--plot", type=Path, help="PNG of both target runs' mAP against training seconds")
    parser.add_argument("--work", type=Path, help="keep data and runs here (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        data = build_data(work / "glyphs", args.source_images, args.train, args.val)
        budget = {"train.epochs": 300, "train.max_minutes": args.source_minutes, "train.eval_every": 300}
        source, source_dir = run(args.config, "source", data["source"], data["source_val"], work, budget)
        target = {"train.epochs": args.epochs, "train.eval_every": 4}
        tuned, _ = run(args.config, "finetune", data["train"], data["val"], work,
                       {**target, "model.pretrained": source_dir / "last.pt"})
        scratch, _ = run(args.config, "scratch", data["train"], data["val"], work, target)
        for row in (source, tuned, scratch):
            print(json.dumps(row), file=sys.stderr)
        equality = import_equality(work)
    if args.plot:
        draw([{**row, "recipe": row["run"]} for row in (tuned, scratch)], args.plot,
             f"{args.train} glyphs images of new classes: fine-tuned against scratch")
    print(json.dumps({"benchmark": "finetune", "config": args.config, "threads": torch.get_num_threads(),
                      "source_images": args.source_images, "source_classes": list(SOURCE_CLASSES),
                      "target_classes": list(TARGET_CLASSES), "train_images": args.train, "val_images": args.val,
                      "source": source, "finetune": tuned, "scratch": scratch,
                      "finetune_map_ratio_to_scratch": round(tuned["bbox_mAP"] / max(scratch["bbox_mAP"], 1e-9), 2),
                      "import": equality}))


if __name__ == "__main__":
    main()
