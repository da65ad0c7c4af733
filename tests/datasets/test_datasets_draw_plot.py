"""draw writes JPEG shrunk to --max-side by default, full-size PNG on request; stats bins keep every bar visible."""
import json

import cv2
import numpy as np
import pytest

from datasets.cli import main
from datasets.view.plot import count_bins


@pytest.fixture
def large(tmp_path):
    """(annotations, images folder) of one 2600x1300 photo with a polygon and a box-only object."""
    (tmp_path / "images").mkdir()
    pixels = np.random.default_rng(0).integers(0, 255, (1300, 2600, 3), np.uint8)
    cv2.imwrite(str(tmp_path / "images/photo.png"), pixels)
    anns = [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [100, 200, 400, 300], "area": 120000, "iscrowd": 0,
             "segmentation": [[100, 200, 500, 200, 500, 500, 100, 500]]},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [2000, 900, 500, 300], "area": 150000, "iscrowd": 0}]
    data = {"images": [{"id": 1, "file_name": "photo.png", "width": 2600, "height": 1300}], "annotations": anns,
            "categories": [{"id": 1, "name": "tree"}]}
    (tmp_path / "a.json").write_text(json.dumps(data))
    return tmp_path / "a.json", tmp_path / "images"


def draw(path, images, out, *args):
    assert main(["draw", str(path), "--images", str(images), "--out", str(out), *args]) == 0
    return sorted(out.iterdir())


def test_draw_writes_jpeg_shrunk_to_max_side(large, tmp_path):
    path, images = large
    [drawn] = draw(path, images, tmp_path / "default")
    assert drawn.name == "photo.jpg" and drawn.read_bytes()[:2] == b"\xff\xd8"
    assert cv2.imread(str(drawn)).shape == (1024, 2048, 3)
    [small] = draw(path, images, tmp_path / "small", "--max-side", "300")
    image = cv2.imread(str(small))
    assert image.shape == (150, 300, 3)
    box = image[40:58, 12:58].astype(int)  # inside the polygon at 300/2600 scale: the mask tint shows
    assert np.abs(box - cv2.resize(cv2.imread(str(images / "photo.png")), (300, 150),
                                   interpolation=cv2.INTER_AREA)[40:58, 12:58]).mean() > 20


def test_draw_full_size_png_on_request(large, tmp_path):
    path, images = large
    [drawn] = draw(path, images, tmp_path / "full", "--max-side", "0", "--format", "png")
    assert drawn.name == "photo.png" and drawn.read_bytes()[:4] == b"\x89PNG"
    assert cv2.imread(str(drawn)).shape == (1300, 2600, 3)


def test_draw_rejects_a_tiny_max_side(large, tmp_path, capsys):
    path, images = large
    assert main(["draw", str(path), "--images", str(images), "--out", str(tmp_path / "o"), "--max-side", "-1"]) == 1
    assert "--max-side must be 0 (full size)" in capsys.readouterr().err


@pytest.mark.parametrize("counts", [[61, 279, 574], [0, 1, 1, 2, 7], [3] * 5, list(range(0, 1000, 7))])
def test_count_bins_keep_every_count_visible(counts):
    edges = count_bins(counts)
    span = edges[-1] - edges[0]
    widths = np.diff(edges)
    assert np.allclose(widths, widths[0]) and len(widths) <= 50
    assert widths[0] >= 1 and widths[0] >= span / 50  # every bar a reasonable fraction of the axis
    assert np.histogram(counts, edges)[0].sum() == len(counts)  # no count falls outside
    assert np.allclose(edges % 1, 0.5)  # edges between whole counts: a bin holds whole counts


def test_count_bins_of_far_apart_counts_are_separate_bars():
    edges = count_bins([61, 279, 574])
    bins = np.digitize([61, 279, 574], edges)
    assert len(set(bins)) == 3 and np.diff(edges)[0] >= (574 - 61) / 50
    assert edges[0] <= 61 and edges[-1] >= 574
