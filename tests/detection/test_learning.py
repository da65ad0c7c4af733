"""Learning: Faster R-CNN on the tiny backbone, trained from scratch on a small synthetic shapes set,
reaches a stated COCO mAP@0.5 on held-out synthetic images; the same model untrained scores about 0.

Measured with this exact setup (160 train / 40 val images of 96 px, 3 classes, 12 epochs, AdamW lr 0.002,
batch 8), DETECTION_LEARNING_SEED = 0, 1, 2, 3: bbox_mAP_50 = 0.368, 0.460, 0.550, 0.486 (bbox_mAP 0.14-0.32);
untrained: 0.0000-0.0004. (Seed 0 gives 0.407 since evaluation runs at score 0.001 / 300 detections and the
warmup of one epoch precedes the cosine; the other seeds were measured before.) Training takes about 45 s on 2 idle CPU cores (several times that when other
jobs share the cores). With 8 epochs instead of 12 the same runs ended at 0.16-0.36: too close to the bar.
The bar, 0.15, is under half the worst measured run and far above what an untrained model gets.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from datasets.synthetic.shapes import make_shapes
from detection.tasks import build_trainer
from tiny_run import tiny_config

BAR = 0.15
SEED = int(os.environ.get("DETECTION_LEARNING_SEED", "0"))  # to re-measure with other seeds


def test_tiny_faster_rcnn_learns_shapes(tmp_path):
    size = 96
    shapes = dict(image_size=size, min_size=size // 5, max_size=size // 2, max_objects=3)
    make_shapes(tmp_path / "train", 160, seed=100 + SEED, **shapes)
    make_shapes(tmp_path / "val", 40, seed=900 + SEED, **shapes)  # other seed: unseen images
    cfg = tiny_config(tmp_path / "run", tmp_path / "train", **{
        "seed": str(SEED), "data.input_size": str(size), "train.epochs": "12", "train.batch_size": "8",
        "train.optimizer": "adamw", "train.lr": "0.002", "train.warmup_epochs": "1", "train.log_every": "1000",
        "model.faster_rcnn.anchor_sizes": "[12,24,48,96]",
        "data.val.annotations": str(tmp_path / "val" / "annotations.json"),
        "data.val.images": str(tmp_path / "val" / "images"),
    })
    trainer = build_trainer(cfg, progress=False)
    untrained = trainer.evaluate()["bbox_mAP_50"]
    start = time.time()
    metrics = trainer.fit()
    seconds = time.time() - start
    print(f"learning: seed {SEED} untrained mAP50 {untrained:.4f} -> trained {metrics['bbox_mAP_50']:.4f} "
          f"(mAP {metrics['bbox_mAP']:.4f}) in {seconds:.0f} s")
    assert untrained < 0.02, "an untrained model should score about 0: the bar would mean nothing"
    assert metrics["bbox_mAP_50"] > BAR, metrics
    assert (Path(cfg.output_dir) / "best.pt").exists()
