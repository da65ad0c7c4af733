"""Masks -> COCO -> masks: every instance comes back (holes as RLE, two-part objects as two polygons)."""
import json

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

from datasets.cli import main
from datasets.core.coco import mask_to_annotation
from datasets.formats.masks import from_masks


def iou(a, b):
    return (a & b).sum() / (a | b).sum()


def ring():
    mask = np.zeros((64, 80), np.uint8)
    cv2.circle(mask, (30, 30), 20, 1, -1)
    cv2.circle(mask, (30, 30), 8, 0, -1)
    return mask


def two_parts():
    mask = np.zeros((64, 80), np.uint8)
    mask[5:15, 50:75] = 1
    cv2.circle(mask, (62, 45), 10, 1, -1)
    return mask


def triangle():
    mask = np.zeros((64, 80), np.uint8)
    cv2.fillPoly(mask, [np.array([[40, 60], [78, 60], [60, 30]], np.int32)], 1)
    return mask


@pytest.fixture
def folders(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir(), masks.mkdir()
    rng = np.random.default_rng(0)
    for stem in ("img_a", "img_b"):
        cv2.imwrite(str(images / f"{stem}.png"), rng.integers(0, 255, (64, 80, 3), dtype=np.uint8))
    return images, masks


def check_instances(path, expected):
    coco = COCO(str(path))
    names = {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())}
    anns = coco.loadAnns(coco.getAnnIds())
    assert len(anns) == len(expected)
    for ann, (name, mask) in zip(anns, expected):
        back = coco.annToMask(ann)
        assert names[ann["category_id"]] == name
        assert iou(back.astype(bool), mask.astype(bool)) > 0.95
        assert ann["area"] == mask.sum()
    return anns


def test_binary_masks_round_trip(folders, tmp_path):
    images, masks = folders
    expected = [("donut", ring()), ("pair", two_parts()), ("tri", triangle())]
    for n, (name, mask) in enumerate(expected):
        cv2.imwrite(str(masks / f"img_a_{name}_{n}.png"), mask * 255)
    out = tmp_path / "coco.json"
    assert main(["from-masks", "--images", str(images), "--masks", str(masks), "--out", str(out)]) == 0
    order = sorted(expected, key=lambda item: item[0])
    anns = check_instances(out, order)
    by_name = dict(zip([n for n, _ in order], anns))
    assert isinstance(by_name["donut"]["segmentation"], dict)  # a hole needs RLE
    assert isinstance(by_name["pair"]["segmentation"], list) and len(by_name["pair"]["segmentation"]) == 2
    ys, xs = np.nonzero(triangle())
    assert by_name["tri"]["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]


def test_label_image_with_category_mapping(folders, tmp_path):
    images, masks = folders
    label = np.zeros((64, 80), np.uint16)
    label[ring() > 0] = 7
    label[triangle() > 0] = 300
    cv2.imwrite(str(masks / "img_b.png"), label)
    mapping = {"names": ["shape", "tri"], "labels": {"*": {"300": "tri"}, "img_b": {"7": "shape"}}}
    (tmp_path / "cats.json").write_text(json.dumps(mapping))
    data = from_masks(images, masks, str(tmp_path / "cats.json"))
    (tmp_path / "c.json").write_text(json.dumps(data))
    check_instances(tmp_path / "c.json", [("shape", ring()), ("tri", triangle())])
    assert [img["file_name"] for img in data["images"]] == ["img_a.png", "img_b.png"]


def test_polygons_are_exact_for_random_masks():
    rng = np.random.default_rng(1)
    for _ in range(20):
        mask = (cv2.GaussianBlur(rng.random((40, 50)), (7, 7), 0) > 0.5).astype(np.uint8)
        fields = mask_to_annotation(mask)
        coco = COCO()
        coco.dataset = {"images": [{"id": 1, "width": 50, "height": 40}], "annotations": [], "categories": []}
        coco.createIndex()
        back = coco.annToMask({"image_id": 1, "segmentation": fields["segmentation"]})
        assert (back == mask).all()


@pytest.mark.parametrize("case,message", [
    ("bad_name", "name is neither"),
    ("wrong_size", "mask is 10x10, its image is 80x64"),
    ("no_mapping", "label images need --category NAME (one class for all) or --categories"),
])
def test_bad_masks_are_user_errors(folders, tmp_path, capsys, case, message):
    images, masks = folders
    if case == "bad_name":
        cv2.imwrite(str(masks / "other_x_1.png"), ring())
    elif case == "wrong_size":
        cv2.imwrite(str(masks / "img_a_x_1.png"), np.ones((10, 10), np.uint8))
    else:
        cv2.imwrite(str(masks / "img_a.png"), ring())
    out = tmp_path / "out.json"
    assert main(["from-masks", "--images", str(images), "--masks", str(masks), "--out", str(out)]) == 1
    assert message in capsys.readouterr().err
    assert not out.exists()


def nuclei(count, shape=(64, 80), seed=0):
    """A label image with `count` small discs, values 1..count (uint16, as Cellpose and StarDist write)."""
    rng = np.random.default_rng(seed)
    label = np.zeros(shape, np.uint16)
    for value in range(1, count + 1):
        x, y = int(rng.integers(2, shape[1] - 2)), int(rng.integers(2, shape[0] - 2))
        cv2.circle(label, (x, y), 2, int(value), -1)
    return label


def test_one_class_label_image_with_category(folders, tmp_path, coco_readers):
    images, masks = folders
    label = nuclei(125)
    cv2.imwrite(str(masks / "img_a.png"), label)
    out = tmp_path / "nuclei.json"
    assert main(["from-masks", "--images", str(images), "--masks", str(masks), "--out", str(out),
                 "--category", "nucleus"]) == 0
    data = json.loads(out.read_text())
    values = [v for v in np.unique(label) if v]  # later discs may cover earlier ones
    assert data["categories"] == [{"id": 1, "name": "nucleus", "supercategory": "object"}]
    check_instances(out, [("nucleus", label == v) for v in values])
    assert len(data["annotations"]) == len(values) > 100
    coco_readers(out, images)


def test_star_value_means_every_other_value(folders, tmp_path):
    images, masks = folders
    label = nuclei(6, seed=1)
    cv2.imwrite(str(masks / "img_a.png"), label)
    cv2.imwrite(str(masks / "img_b.png"), nuclei(3, seed=2))
    mapping = {"labels": {"*": {"1": "big", "*": "small"}, "img_b": {"*": "other"}}}
    (tmp_path / "cats.json").write_text(json.dumps(mapping))
    data = from_masks(images, masks, str(tmp_path / "cats.json"))
    names = {c["id"]: c["name"] for c in data["categories"]}
    by_image = [[names[a["category_id"]] for a in data["annotations"] if a["image_id"] == i] for i in (1, 2)]
    assert by_image[0] == ["big"] + ["small"] * (len(np.unique(label)) - 2)
    assert by_image[1] == ["other"] * 3


def test_category_and_categories_together_are_refused(folders, tmp_path, capsys):
    """A usage error: argparse's usage and error, exit 2."""
    images, masks = folders
    (tmp_path / "cats.json").write_text("[]")
    assert main(["from-masks", "--images", str(images), "--masks", str(masks), "--out", str(tmp_path / "o.json"),
                 "--category", "cell", "--categories", str(tmp_path / "cats.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: ") and "not allowed with argument" in err
