"""Benchmark of the datasets tools: YOLO -> COCO conversion and validation of 5,000 tiny images.

Builds the YOLO set in a temporary folder and prints one JSON line with images per second.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from datasets.checks.validate import validate_coco
from datasets.core.coco import load_coco, save_coco
from datasets.formats.convert import convert_to_coco


def build_yolo_set(root: Path, num_images: int, size: int = 64, seed: int = 0) -> tuple[Path, Path]:
    """Write num_images random PNGs and YOLO labels (1-4 boxes each); returns (images, labels)."""
    rng = np.random.default_rng(seed)
    images, labels = root / "images", root / "labels"
    images.mkdir(parents=True)
    labels.mkdir()
    (root / "classes.txt").write_text("circle\nsquare\ntriangle\n")
    pool = [cv2.imencode(".png", rng.integers(0, 255, (size, size, 3), dtype=np.uint8))[1].tobytes() for _ in range(16)]
    for index in range(num_images):
        (images / f"{index:06d}.png").write_bytes(pool[index % len(pool)])
        count = int(rng.integers(1, 5))
        wh = rng.uniform(0.1, 0.4, (count, 2))
        centre = rng.uniform(wh / 2, 1 - wh / 2)
        lines = [f"{int(rng.integers(3))} {c[0]:.6f} {c[1]:.6f} {s[0]:.6f} {s[1]:.6f}" for c, s in zip(centre, wh)]
        (labels / f"{index:06d}.txt").write_text("\n".join(lines) + "\n")
    return images, labels


def best_time(func, repeats: int) -> float:
    """Smallest wall time of `repeats` calls (the machine is shared; the minimum is the least noisy)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        images, labels = build_yolo_set(root, args.images)
        out = root / "coco.json"

        def convert() -> None:
            save_coco(out, convert_to_coco("yolo", labels, images))

        def validate() -> None:
            problems = validate_coco(load_coco(out), images)
            assert not problems, problems[:3]

        convert_s = best_time(convert, args.repeats)
        validate_s = best_time(validate, args.repeats)
    print(json.dumps({"benchmark": "datasets", "images": args.images,
                      "convert_images_per_s": round(args.images / convert_s, 1),
                      "validate_images_per_s": round(args.images / validate_s, 1)}))


if __name__ == "__main__":
    main()
