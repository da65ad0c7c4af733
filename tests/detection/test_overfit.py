"""A tiny SSD and a tiny YOLO each overfit four synthetic images: bbox_mAP_50 near 1.0 on those images.

Full-batch AdamW on 64 px images; an untrained model scores near 0, so the bar cannot pass by chance.
"""
from __future__ import annotations


import pytest
import torch

from datasets.synthetic.shapes import make_shapes
from detection.config import config_from_dict
from detection.data.coco import CocoDetection, collate
from detection.data.transforms import build_transform
from detection.engine.evaluator import evaluate
from detection.models import build_detector

MODELS = {
    "ssd": {"features": ["c3", "c4", "c5"], "neck_levels": 4,
            "ssd": {"min_scale": 0.2, "max_scale": 0.8, "aspect_ratios": [2.0]}},
    "yolo": {"yolo": {"anchors": [[12, 12, 16, 16, 20, 20], [24, 24, 28, 28, 32, 32], [36, 36, 40, 40, 48, 48]]}},
}


@pytest.fixture(scope="module")
def four_images(tmp_path_factory) -> CocoDetection:
    root = tmp_path_factory.mktemp("overfit")
    make_shapes(root, 4, seed=2, image_size=64, min_size=14, max_size=32, max_objects=2)
    return CocoDetection(root / "annotations.json", root / "images", build_transform(64, train=False))


@pytest.mark.parametrize("family", sorted(MODELS))
def test_family_overfits_four_images(family, four_images):
    cfg = config_from_dict({"data": {"input_size": 64}, "model": {
        "name": family, "backbone": "tiny", "neck_channels": 32, "postprocess": {"score_threshold": 0.01},
        **MODELS[family]}})
    torch.manual_seed(0)
    model = build_detector(cfg.model, num_classes=3, input_size=64)
    images, targets = collate([four_images[i] for i in range(len(four_images))])
    loader = torch.utils.data.DataLoader(four_images, batch_size=4, collate_fn=collate)
    assert evaluate(model, loader, torch.device("cpu"))["bbox_mAP_50"] < 0.2  # untrained
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.003, weight_decay=0)
    model.train()
    for _ in range(150):
        loss = sum(model(images, targets).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert evaluate(model, loader, torch.device("cpu"))["bbox_mAP_50"] >= 0.9
