"""The anchor-free YOLO head (model.yolo.head: free): task-aligned assignment on hand-made cases, and a tiny
end2end model that overfits a few crowded images, answers without duplicates and exports to ONNX unchanged."""
from __future__ import annotations

import pytest
import torch
from pycocotools.coco import COCO
from torchvision.ops import box_iou

from detection.config import config_from_dict
from detection.deploy.exporter import export_detector
from detection.deploy.runtime import load_onnx
from detection.engine.evaluator import coco_metrics
from detection.models import build_detector
from detection.models.tal import pad_targets, task_aligned_assign
from detection.models.yolo_free import anchor_points

SIZE = 96
CATEGORIES = [{"id": 1, "name": "red"}, {"id": 2, "name": "green"}, {"id": 3, "name": "blue"}]


def points_at(size: int, strides=(8, 16, 32)) -> torch.Tensor:
    maps = [torch.zeros(1, 1, size // s, size // s) for s in strides]
    return anchor_points(maps, list(strides))[0]


def assign(targets: list[dict], size: int = 128, topk: int = 10, seed: int = 0):
    """Assignment of random predictions (scores, boxes around every point) to `targets`."""
    g = torch.Generator().manual_seed(seed)
    points = points_at(size)
    n, a = len(targets), len(points)
    scores = torch.rand(n, a, 3, generator=g)
    half = torch.rand(n, a, 2, generator=g) * 30 + 2
    boxes = torch.cat([points - half, points + half], -1)
    padded = pad_targets(targets, torch.device("cpu"))
    return points, padded, task_aligned_assign(scores, boxes, points, padded, topk=topk)


def positives_per_box(padded, got) -> torch.Tensor:
    """[N, M]: how many points each padded box got."""
    index = torch.where(got.positive, got.box_index, -1)
    return torch.stack([(index.unsqueeze(1) == torch.arange(padded.boxes.shape[1]).view(1, -1, 1)).sum(-1)[i]
                        for i in range(len(index))])


def test_every_box_gets_a_positive_and_a_tiny_box_its_nearest_point():
    tiny = [60.5, 60.5, 63.5, 63.5]  # 3 px, between the cell centres of stride 8 (60 and 68)
    targets = [{"boxes": torch.tensor([[10.0, 10.0, 100.0, 90.0], tiny, [70.0, 20.0, 120.0, 60.0]]),
                "labels": torch.tensor([1, 2, 3])},
               {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}]
    points, padded, got = assign(targets)
    counts = positives_per_box(padded, got)
    assert (counts[0] >= 1).all() and (counts[0] <= 10).all(), counts
    assert not got.positive[1].any(), "an image without boxes has no positive"
    tiny_point = points[(got.positive[0]) & (got.box_index[0] == 1)]
    assert torch.equal(tiny_point, torch.tensor([[60.0, 60.0]])), "the tiny box gets its nearest point"
    assert torch.equal(got.boxes[0][got.positive[0] & (got.box_index[0] == 1)], torch.tensor([tiny]))
    scores = got.scores[0][got.positive[0]]
    assert (scores >= 0).all() and (scores <= 1).all() and (scores > 0).sum(-1).eq(1).all(), "one class a point"
    assert got.scores[~got.positive].eq(0).all()


def test_crowded_boxes_each_get_a_positive_and_top1_gives_exactly_one():
    g = torch.Generator().manual_seed(1)
    corner = torch.rand(30, 2, generator=g) * 100
    boxes = torch.cat([corner, corner + 6 + torch.rand(30, 2, generator=g) * 20], 1)
    targets = [{"boxes": boxes, "labels": torch.randint(1, 4, (30,), generator=g)}]
    _, padded, many = assign(targets)
    assert (positives_per_box(padded, many) >= 1).all()
    _, padded, one = assign(targets, topk=1)
    counts = positives_per_box(padded, one)
    assert counts.max() == 1 and counts.sum() >= 28, counts  # a point shared by two boxes goes to one of them


def crowded_batch(count: int, seed: int = 0) -> tuple[torch.Tensor, list[dict]]:
    """Images with 5..8 bright squares each, the class is the colour; some squares nearly touch."""
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(count, 3, SIZE, SIZE, generator=g) * 0.15
    targets = []
    for i in range(count):
        boxes, labels = [], []
        for cell in torch.randperm(16, generator=g)[: 5 + i % 4].tolist():
            side = int(torch.randint(12, 22, (1,), generator=g))
            x, y = cell % 4 * 24 + 1, cell // 4 * 24 + 1
            label = int(torch.randint(1, 4, (1,), generator=g))
            images[i, :, y:y + side, x:x + side] = 0.1
            images[i, label - 1, y:y + side, x:x + side] = 0.95
            boxes.append([x, y, x + side, y + side])
            labels.append(label)
        targets.append({"boxes": torch.tensor(boxes, dtype=torch.float32), "labels": torch.tensor(labels)})
    return images, targets


@pytest.fixture(scope="module")
def overfit():
    """A free-head end2end YOLO (tiny backbone, 96 px) after 150 AdamW steps on 4 crowded images."""
    torch.manual_seed(0)
    cfg = config_from_dict({"data": {"input_size": SIZE}, "model": {
        "name": "yolo", "backbone": "tiny", "neck_channels": 32,
        "yolo": {"head": "free", "end2end": True, "reg_max": 8},
        "postprocess": {"score_threshold": 0.001, "max_detections": 100}}})
    model = build_detector(cfg.model, num_classes=len(CATEGORIES), input_size=SIZE)
    images, targets = crowded_batch(4)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    model.train()
    for _ in range(150):
        loss = sum(model(images, targets).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval(), images, targets


def coco_of(targets: list[dict]) -> COCO:
    coco = COCO()
    annotations = [{"id": len(targets) * 100 + i * 100 + j, "image_id": i, "category_id": int(label), "iscrowd": 0,
                    "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1)}
                   for i, t in enumerate(targets) for j, ((x1, y1, x2, y2), label) in
                   enumerate(zip(t["boxes"].tolist(), t["labels"].tolist()))]
    coco.dataset = {"images": [{"id": i, "width": SIZE, "height": SIZE} for i in range(len(targets))],
                    "annotations": annotations, "categories": CATEGORIES}
    coco.createIndex()
    return coco


def test_a_tiny_model_overfits_a_handful_of_images(overfit):
    model, images, targets = overfit
    with torch.no_grad():
        outputs = model(images)
    results = [{"image_id": i, "category_id": int(label), "score": float(score),
                "bbox": [x1, y1, x2 - x1, y2 - y1]}
               for i, out in enumerate(outputs)
               for (x1, y1, x2, y2), score, label in zip(out["boxes"].tolist(), out["scores"], out["labels"])]
    metrics, table = coco_metrics(coco_of(targets), results)
    assert metrics["bbox_mAP_50"] > 0.95, table


def test_one_to_one_answers_need_no_nms(overfit):
    """The end2end head's confident answers are one a square: no two of a class overlap."""
    model, images, targets = overfit
    with torch.no_grad():
        dense = model.dense_outputs(images)
        outputs = model(images, score_threshold=0.25)
    assert not dense.nms
    for out, target in zip(outputs, targets):
        assert len(out["boxes"]) == len(target["boxes"]), (out["scores"], len(target["boxes"]))
        for label in out["labels"].unique():
            same = out["boxes"][out["labels"] == label]
            overlap = box_iou(same, same).fill_diagonal_(0)
            assert overlap.max() < 0.3 if len(same) > 1 else True


def test_onnx_export_of_the_nms_free_branch_equals_pytorch(overfit, tmp_path):
    model, images, _ = overfit
    export_detector(model, "yolo", CATEGORIES, "onnx", tmp_path / "m.onnx", batch=1)
    runtime = load_onnx(tmp_path / "m.onnx", threads=1)
    for batch in (images[:1], images):
        with torch.no_grad():
            want = model(batch, score_threshold=0.01)
        got = runtime(batch, score_threshold=0.01)
        for g, w in zip(got, want):
            assert len(w["boxes"]) > 0 and torch.equal(g["labels"], w["labels"])
            torch.testing.assert_close(g["boxes"], w["boxes"], atol=1e-3, rtol=0)
            torch.testing.assert_close(g["scores"], w["scores"], atol=1e-5, rtol=0)
