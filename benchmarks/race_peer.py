"""The race's peer: Ultralytics YOLO26n from scratch on the same glyphs data and training budget.

Ultralytics needs the non-headless OpenCV, which collides with ours, so it runs in a throwaway virtualenv made
here (pip install from the package registry; the same torch version). Its detections on the val images (conf
0.001, 300 a image, as our eval) are scored by the same pycocotools evaluation as every recipe.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import torch
from pycocotools.coco import COCO

from datasets.cli import main as datasets_main
from detection.engine.evaluator import coco_metrics

PACKAGES = ["ultralytics", "torch==2.14.1", "torchvision==0.29.1"]
SCRIPT = textwrap.dedent("""
    import json, sys, time, torch
    from pathlib import Path
    import ultralytics.utils.torch_utils as torch_utils
    from ultralytics import YOLO
    data, out, minutes, size, val_images = sys.argv[1], Path(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    torch_utils.NUM_THREADS = int(sys.argv[6])  # Ultralytics trains on CPU count - 1 threads: give it ours
    torch.set_num_threads(int(sys.argv[6]))
    model = YOLO("yolo26n.yaml")
    start = time.time()
    model.train(data=data, imgsz=size, epochs=1000, time=minutes / 60, device="cpu", workers=0, pretrained=False,
                amp=False, plots=False, val=False, fliplr=0.0, project=str(out), name="train", exist_ok=True,
                verbose=False)
    seconds = time.time() - start
    found = {}
    files = sorted(Path(val_images).iterdir())
    for result in model.predict([str(f) for f in files], imgsz=size, conf=0.001, max_det=300, device="cpu",
                                verbose=False, stream=True):
        boxes = result.boxes
        found[Path(result.path).name] = [[*b, float(s), int(c)] for b, s, c in
                                          zip(boxes.xyxy.tolist(), boxes.conf.tolist(), boxes.cls.tolist())]
    image = str(files[0])
    model.predict(image, imgsz=size, device="cpu", verbose=False)
    times = []
    for _ in range(10):
        t = time.perf_counter()
        model.predict(image, imgsz=size, device="cpu", verbose=False)
        times.append((time.perf_counter() - t) * 1000)
    params = sum(p.numel() for p in model.model.parameters())
    json.dump({"detections": found, "train_seconds": seconds, "infer_ms_b1": sorted(times)[5],
               "params_M": round(params / 1e6, 3), "threads": torch.get_num_threads()}, open(out / "peer.json", "w"))
""")


def make_venv(folder: Path) -> Path:
    """A fresh virtualenv with Ultralytics; its python."""
    python = folder / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PACKAGES], check=True)
    return python


def yolo_layout(data: dict[str, Path], out: Path) -> Path:
    """Our COCO splits in the Ultralytics layout (detpipe data export --to yolo); its data.yaml."""
    splits = [f"{name}={path}:{path.parent / 'images'}" for name, path in data.items()]
    datasets_main(["export", "--to", "yolo", *sum((["--split", s] for s in splits), []), "--out", str(out)])
    return out / "data.yaml"


def results_of(detections: dict, coco: COCO) -> list[dict]:
    """Ultralytics' boxes by file name (class index i = our category at index i) -> COCO results."""
    ids = {image["file_name"]: image["id"] for image in coco.dataset["images"]}
    categories = [c["id"] for c in sorted(coco.dataset["categories"], key=lambda c: c["id"])]
    return [{"image_id": ids[name], "category_id": categories[c], "score": s, "bbox": [x1, y1, x2 - x1, y2 - y1]}
            for name, rows in detections.items() for x1, y1, x2, y2, s, c in rows]


def run_peer(data: dict[str, Path], work: Path, minutes: float, size: int) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    python = make_venv(work / "venv")
    data_yaml = yolo_layout(data, work / "yolo")
    (work / "peer.py").write_text(SCRIPT)
    threads = torch.get_num_threads()  # the same threads as every recipe
    env = {**os.environ, "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(work / "config"), "OMP_NUM_THREADS": str(threads)}
    subprocess.run([str(python), str(work / "peer.py"), str(data_yaml), str(work), str(minutes), str(size),
                    str(data["val"].parent / "images"), str(threads)], check=True, env=env, cwd=work)
    answer = json.loads((work / "peer.json").read_text())
    coco = COCO(str(data["val"]))
    metrics, _ = coco_metrics(coco, results_of(answer["detections"], coco))
    return {"recipe": "ultralytics_yolo26n", "params_M": answer["params_M"], "train_seconds": round(answer["train_seconds"], 1),
            "infer_ms_b1": round(answer["infer_ms_b1"], 2), "bbox_mAP": round(metrics["bbox_mAP"], 4),
            "bbox_mAP_50": round(metrics["bbox_mAP_50"], 4), "threads": answer["threads"]}
