"""Proposal files (JSON {file_name: [[x, y, w, h], ...]}): written atomically, read back as xyxy, and every bad
entry answered by a UserError that names the file and the entry."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from datasets.core.errors import UserError
from detection.proposals.files import read_proposals, write_proposals

SIZES = {"a.png": (40, 60), "sub/b.jpg": (100, 80)}  # file_name -> (height, width)


def test_round_trip_keeps_boxes_and_order(tmp_path):
    boxes = {"a.png": np.array([[10.5, 4, 30.25, 20], [0, 0, 60, 40]], np.float32),
             "sub/b.jpg": np.array([[1, 2, 3, 4]], np.float32)}
    path = tmp_path / "proposals.json"
    write_proposals(path, boxes)
    assert json.loads(path.read_text())["a.png"][0] == [10.5, 4.0, 19.75, 16.0]  # COCO x, y, w, h
    assert [p.name for p in tmp_path.iterdir()] == ["proposals.json"], "no temporary file left"
    back = read_proposals(path, SIZES)
    assert list(back) == ["a.png", "sub/b.jpg"]
    for name in boxes:
        assert back[name].dtype == np.float32
        np.testing.assert_allclose(back[name], boxes[name], atol=0.01)


def test_boxes_within_one_pixel_outside_are_accepted_and_clipped(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"a.png": [[-0.6, -1, 61, 20], [59.5, 39.5, 1.4, 1.4]], "sub/b.jpg": []}))
    got = read_proposals(path, SIZES)
    np.testing.assert_allclose(got["a.png"], [[0, 0, 60, 19], [59.5, 39.5, 60, 40]], atol=1e-5)
    assert got["sub/b.jpg"].shape == (0, 4)


@pytest.mark.parametrize("content, message", [  # message: a regular expression
    ("{not json", "not a JSON file"),
    ("[[1, 2, 3, 4]]", "expected a JSON object"),
    ('{"c.png": [[1, 2, 3, 4]]}', "entry 'c.png' is not an image of the dataset"),
    ('{"a.png": {"x": 1}}', r"entry 'a.png': expected a list of \[x, y, w, h\] boxes"),
    ('{"a.png": [[1, 2, 3, 4], [1, 2, 3]]}', "entry 'a.png', box 1: expected 4 numbers"),
    ('{"a.png": [[1, 2, "3", 4]]}', "entry 'a.png', box 0: expected 4 numbers"),
    ('{"a.png": [[1, 2, true, 4]]}', "entry 'a.png', box 0: expected 4 numbers"),
    ('{"a.png": [[1, 2, NaN, 4]]}', "entry 'a.png', box 0 .*not a finite number"),
    ('{"sub/b.jpg": [[1, 2, 3, 4], [5, 5, 0, 4]]}', "entry 'sub/b.jpg', box 1 .*width and height above 0"),
    ('{"a.png": [[1, 2, -3, 4]]}', "entry 'a.png', box 0 .*width and height above 0"),
    ('{"a.png": [[50, 2, 12, 4]]}', r"entry 'a.png', box 0 \[50, 2, 12, 4\]: lies outside the 60x40 image"),
    ('{"a.png": [[-2, 2, 10, 4]]}', "entry 'a.png', box 0 .*lies outside"),
])
def test_bad_file_is_a_user_error_naming_file_and_entry(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(UserError) as info:
        read_proposals(path, SIZES)
    text = str(info.value)
    assert text.startswith(f"{path}: ") and "\n" not in text
    assert re.search(message, text), text


def test_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="none.json: proposals file not found"):
        read_proposals(tmp_path / "none.json", SIZES)
