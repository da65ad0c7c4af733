"""Data: COCO reader and albumentations pipelines keep every box on its object; letterbox inverts;
bad COCO fields and unreadable images are UserErrors naming what is wrong."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from datasets.core.errors import UserError
from datasets.core.images import read_rgb
from detection.config import AugmentConfig
from detection.data.coco import CocoDetection, collate, load_coco
from detection.data.transforms import build_transform, letterbox_scale

# label -> RGB colour of that class's rectangles; the background is black
COLORS = {1: (255, 0, 0), 2: (0, 255, 0), 3: (0, 0, 255)}


def write_rect_dataset(root: Path, n: int = 6, seed: int = 0) -> Path:
    """Images of different sizes/aspects with solid, non-touching rectangles; image 1 has no objects.

    Category ids are 10, 20, 30 (not contiguous) so the id -> label mapping is exercised.
    """
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    images, anns = [], []
    sizes = [(96, 64), (64, 96), (80, 80), (120, 72), (72, 120), (100, 60)]
    for index in range(n):
        width, height = sizes[index % len(sizes)]
        image = np.zeros((height, width, 3), np.uint8)
        taken = np.zeros((height, width), bool)
        if index > 0:
            for _ in range(12):
                w, h = (int(v) for v in rng.integers(10, 28, 2))
                x, y = int(rng.integers(0, width - w)), int(rng.integers(0, height - h))
                if taken[max(0, y - 2):y + h + 2, max(0, x - 2):x + w + 2].any():
                    continue
                taken[y:y + h, x:x + w] = True
                label = int(rng.integers(1, 4))
                image[y:y + h, x:x + w] = COLORS[label]
                anns.append({"id": len(anns) + 1, "image_id": index + 1, "category_id": label * 10,
                             "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0})
        name = f"img{index}.png"
        cv2.imwrite(str(root / "images" / name), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        images.append({"id": index + 1, "file_name": name, "width": width, "height": height})
    categories = [{"id": 10, "name": "red"}, {"id": 20, "name": "green"}, {"id": 30, "name": "blue"}]
    path = root / "annotations.json"
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": categories}))
    return path


def boxes_on_their_objects(pixels: np.ndarray, boxes: torch.Tensor, labels: torch.Tensor, where) -> int:
    """Assert each box's inside, 1.5 px in from the edges (resampling blurs them), is its class's colour;
    returns how many boxes were checked (boxes too thin to have an inside are skipped)."""
    checked = 0
    for box, label in zip(boxes.tolist(), labels.tolist()):
        x1, y1, x2, y2 = box
        inner = pixels[int(np.ceil(y1 + 1.5)):int(np.floor(y2 - 1.5)), int(np.ceil(x1 + 1.5)):int(np.floor(x2 - 1.5))]
        if inner.size == 0:
            continue
        mean = inner.reshape(-1, 3).mean(0)
        assert np.abs(mean - np.array(COLORS[label])).max() < 40, (where, box, label, mean)
        checked += 1
    return checked


@pytest.fixture(scope="module")
def rects(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("rects")
    write_rect_dataset(root)
    return root


def test_labels_map_category_ids_contiguously(rects):
    ds = CocoDetection(rects / "annotations.json", rects / "images", build_transform(64, train=False))
    assert ds.cat_to_label == {10: 1, 20: 2, 30: 3}
    assert [c["id"] for c in ds.categories] == [10, 20, 30]
    assert len(ds) == 6


@pytest.mark.parametrize("size", [64, 160], ids=["shrink", "enlarge"])
def test_eval_transform_letterbox_maps_back_within_one_pixel(rects, size):
    ds = CocoDetection(rects / "annotations.json", rects / "images", build_transform(size, train=False))
    checked = 0
    for index in range(len(ds)):
        image, target = ds[index]
        assert image.shape == (3, size, size) and image.dtype == torch.float32
        assert 0 <= image.min() and image.max() <= 1
        height, width = target["orig_size"]
        assert target["scale"] == pytest.approx(letterbox_scale(height, width, size)) == pytest.approx(
            size / max(height, width))
        anns = ds.coco.imgToAnns.get(target["image_id"], [])
        original = torch.tensor([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2],
                                  a["bbox"][1] + a["bbox"][3]] for a in anns], dtype=torch.float32).reshape(-1, 4)
        labels = torch.tensor([ds.cat_to_label[a["category_id"]] for a in anns], dtype=torch.int64)
        assert torch.equal(target["labels"], labels)  # eval keeps every object, in order
        torch.testing.assert_close(target["boxes"] / target["scale"], original, atol=1.0, rtol=0)
        # padding is bottom/right only: the picture occupies the top-left corner
        new_h, new_w = round(height * target["scale"]), round(width * target["scale"])
        if new_w < size:
            assert torch.allclose(image[:, :, new_w + 1:], torch.tensor(114 / 255), atol=1e-6)
        if new_h < size:
            assert torch.allclose(image[:, new_h + 1:, :], torch.tensor(114 / 255), atol=1e-6)
        checked += len(anns)
    assert checked > 10


def test_image_without_annotations_is_allowed(rects):
    ds = CocoDetection(rects / "annotations.json", rects / "images", build_transform(64, train=True,
                                                                                      aug=AugmentConfig(), seed=0))
    image, target = ds[0]  # img0 has no objects
    assert target["image_id"] == 1
    assert target["boxes"].shape == (0, 4) and target["boxes"].dtype == torch.float32
    assert target["labels"].shape == (0,) and target["labels"].dtype == torch.int64
    assert image.shape == (3, 64, 64)


def test_train_augmentation_keeps_boxes_on_their_objects(rects):
    """Flip + scale/translate (colour jitter off so colours stay exact): each box still frames its
    rectangle: its inside is the object's colour, and it lies inside the image."""
    size = 64
    aug = AugmentConfig(hflip=0.5, scale_min=0.6, scale_max=1.4, color=0.0)
    transform = build_transform(size, train=True, aug=aug, seed=123)
    ds = CocoDetection(rects / "annotations.json", rects / "images", transform)
    boxes_seen, flipped_or_moved = 0, 0
    for round_ in range(8):
        transform.set_random_seed(round_)
        for index in range(1, len(ds)):
            image, target = ds[index]
            pixels = (image * 255).round().permute(1, 2, 0).numpy()
            boxes = target["boxes"]
            assert (boxes[:, 0] >= 0).all() and (boxes[:, 1] >= 0).all()
            assert (boxes[:, 2] <= size).all() and (boxes[:, 3] <= size).all()
            assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
            eval_boxes = CocoDetection.raw_target(ds, target["image_id"])[0] * target["scale"]
            if len(eval_boxes) != len(boxes) or not np.allclose(eval_boxes, boxes.numpy(), atol=1):
                flipped_or_moved += 1
            boxes_seen += boxes_on_their_objects(pixels, boxes, target["labels"], index)
    assert boxes_seen > 100
    assert flipped_or_moved > 5, "augmentation should change the boxes most of the time"


def test_train_augmentation_is_seeded(rects):
    aug = AugmentConfig(hflip=0.5, scale_min=0.6, scale_max=1.4, color=0.5)
    a = CocoDetection(rects / "annotations.json", rects / "images", build_transform(64, True, aug, seed=5))
    b = CocoDetection(rects / "annotations.json", rects / "images", build_transform(64, True, aug, seed=5))
    for index in range(1, 4):
        (ia, ta), (ib, tb) = a[index], b[index]
        assert torch.equal(ia, ib) and torch.equal(ta["boxes"], tb["boxes"])


def test_shapes_with_colour_augmentation_boxes_hold(shapes_dir):
    """The synthetic shapes set, full demo augmentation: boxes stay valid and frame non-background."""
    aug = AugmentConfig(hflip=0.5, scale_min=0.8, scale_max=1.2, color=0.3)
    ds = CocoDetection(shapes_dir / "annotations.json", shapes_dir / "images", build_transform(96, True, aug, seed=0))
    total = 0
    for index in range(len(ds)):
        image, target = ds[index]
        boxes = target["boxes"]
        assert image.shape == (3, 96, 96)
        assert ((boxes >= 0) & (boxes <= 96)).all()
        assert (boxes[:, 2:] > boxes[:, :2]).all()
        assert set(target["labels"].tolist()) <= {1, 2, 3}
        total += len(boxes)
    assert total >= 16


def test_collate_stacks_images_and_keeps_targets(rects):
    ds = CocoDetection(rects / "annotations.json", rects / "images", build_transform(64, train=False))
    images, targets = collate([ds[0], ds[1], ds[2]])
    assert images.shape == (3, 3, 64, 64)
    assert [t["image_id"] for t in targets] == [1, 2, 3]


def test_crowd_annotations_left_out_of_targets(tmp_path):
    root = tmp_path / "d"
    path = write_rect_dataset(root, n=3)
    data = json.loads(path.read_text())
    first = next(a for a in data["annotations"] if a["image_id"] == 2)
    first["iscrowd"] = 1
    path.write_text(json.dumps(data))
    ds = CocoDetection(path, root / "images", build_transform(64, train=False))
    _, target = ds[1]
    n_anns = len([a for a in data["annotations"] if a["image_id"] == 2])
    assert len(target["boxes"]) == n_anns - 1


# ---- errors -------------------------------------------------------------------------------------

def broken(tmp_path: Path, edit) -> Path:
    root = tmp_path / "b"
    path = write_rect_dataset(root, n=3)
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("field, value, pattern", [
    ("bbox", [1, 2, 3], r"annotation 2\b.*bbox"),
    ("bbox", "10 10 5 5", r"annotation 2\b.*bbox"),
    ("bbox", [1, 2, "w", 4], r"annotation 2\b.*bbox"),
    ("category_id", 99, r"annotation 2\b.*category_id 99"),
    ("image_id", 77, r"annotation 2\b.*image_id 77"),
])
def test_broken_annotation_field_names_annotation_id(tmp_path, field, value, pattern):
    def edit(data):
        data["annotations"][1][field] = value

    path = broken(tmp_path, edit)
    with pytest.raises(UserError, match=pattern) as info:
        load_coco(path)
    assert str(path) in str(info.value)


def test_missing_section_is_user_error(tmp_path):
    path = broken(tmp_path, lambda d: d.pop("categories"))
    with pytest.raises(UserError, match="categories"):
        load_coco(path)


def test_image_without_file_name_is_user_error(tmp_path):
    path = broken(tmp_path, lambda d: d["images"][0].pop("file_name"))
    with pytest.raises(UserError, match="image 1.*file_name"):
        load_coco(path)


def test_not_json_and_missing_file_are_user_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{ nope")
    with pytest.raises(UserError, match="bad.json.*JSON"):
        load_coco(bad)
    with pytest.raises(UserError, match="absent.json"):
        load_coco(tmp_path / "absent.json")
    with pytest.raises(UserError, match="images folder"):
        CocoDetection(broken(tmp_path, lambda d: None), tmp_path / "no_images", build_transform(64, False))


def test_unreadable_image_names_the_file(tmp_path):
    root = tmp_path / "u"
    path = write_rect_dataset(root, n=3)
    (root / "images" / "img1.png").write_bytes(b"not a png at all")
    (root / "images" / "img2.png").unlink()
    ds = CocoDetection(path, root / "images", build_transform(64, train=False))
    with pytest.raises(UserError, match="img1.png"):
        ds[1]
    with pytest.raises(UserError, match="img2.png"):
        ds[2]
    with pytest.raises(UserError, match="img1.png"):
        read_rgb(root / "images" / "img1.png")


def test_read_rgb_gives_rgb(tmp_path):
    bgr = np.zeros((4, 5, 3), np.uint8)
    bgr[..., 0] = 200  # blue in OpenCV's order
    cv2.imwrite(str(tmp_path / "b.png"), bgr)
    rgb = read_rgb(tmp_path / "b.png")
    assert rgb.shape == (4, 5, 3) and rgb.dtype == np.uint8
    assert (rgb[..., 2] == 200).all() and (rgb[..., 0] == 0).all()


def test_mosaic_keeps_boxes_on_their_objects(rects):
    """Every item a mosaic of four: boxes still frame their rectangles, inside the image, and images mix."""
    size = 64
    aug = AugmentConfig(hflip=0.5, scale_min=0.8, scale_max=1.2, color=0.0, mosaic=1.0)
    transform = build_transform(size, train=True, aug=aug, seed=5)
    ds = CocoDetection(rects / "annotations.json", rects / "images", transform, mosaic=1.0)
    np.random.seed(0)
    boxes_seen, counts = 0, []
    for index in range(1, len(ds)):
        for _ in range(4):
            image, target = ds[index]
            assert image.shape == (3, size, size)
            pixels = (image * 255).round().permute(1, 2, 0).numpy()
            boxes = target["boxes"]
            assert (boxes[:, :2] >= 0).all() and (boxes[:, 2:] <= size).all()
            counts.append(len(boxes))
            boxes_seen += boxes_on_their_objects(pixels, boxes, target["labels"], index)
    assert boxes_seen > 60
    single = [len(ds.raw_target(i)[0]) for i in ds.ids]
    assert max(counts) > max(single)  # objects of several images in one


def test_mosaic_with_the_same_seed_gives_the_same_item(rects):
    aug = AugmentConfig(hflip=0.5, scale_min=0.8, scale_max=1.2, color=0.0, mosaic=1.0)
    items = []
    for _ in range(2):
        ds = CocoDetection(rects / "annotations.json", rects / "images", build_transform(64, True, aug, seed=1),
                           mosaic=1.0)
        np.random.seed(3)
        items.append(ds[2])
    assert torch.equal(items[0][0], items[1][0]) and torch.equal(items[0][1]["boxes"], items[1][1]["boxes"])
