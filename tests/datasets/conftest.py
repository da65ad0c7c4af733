"""Fixtures for the datasets tests: a tiny synthetic shapes set made in tmp_path, and COCO's own readers."""
import contextlib
import io
import json

import pytest
from pycocotools.coco import COCO

from datasets.synthetic.shapes import make_shapes


@pytest.fixture
def shapes(tmp_path):
    """(annotations path, images folder, COCO dict) of 10 synthetic 128x128 images."""
    path = make_shapes(tmp_path / "shapes", 10, seed=11)
    return path, tmp_path / "shapes" / "images", json.loads(path.read_text())


@pytest.fixture
def coco_readers():
    """check(path, images): pycocotools and torchvision's CocoDetection open the file and every image in it."""
    datasets = pytest.importorskip("torchvision.datasets")

    def check(path, images) -> None:
        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO(str(path))
        reader = datasets.CocoDetection(str(images), str(path))
        assert len(reader) == len(coco.getImgIds()) > 0
        seen = 0
        for index in range(len(reader)):
            image, target = reader[index]
            info = coco.loadImgs(reader.ids[index])[0]
            assert image.size == (info["width"], info["height"])
            assert all(coco.annToMask(ann).sum() > 0 for ann in target)
            seen += len(target)
        assert seen == len(coco.getAnnIds()) > 0

    return check
