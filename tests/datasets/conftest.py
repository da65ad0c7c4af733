"""Fixtures for the datasets tests: a tiny synthetic shapes set made in tmp_path."""
import json

import pytest

from datasets.synth import make_shapes


@pytest.fixture
def shapes(tmp_path):
    """(annotations path, images folder, COCO dict) of 10 synthetic 128x128 images."""
    path = make_shapes(tmp_path / "shapes", 10, seed=11)
    return path, tmp_path / "shapes" / "images", json.loads(path.read_text())
