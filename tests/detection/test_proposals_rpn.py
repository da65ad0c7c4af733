"""The `rpn` proposal method: a Faster R-CNN checkpoint's RPN proposes in original image pixels, best objectness
first; a missing checkpoint or one of another family is one clear UserError."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from datasets.core.errors import UserError
from detection.config import config_from_dict
from detection.data.transforms import letterbox_scale
from detection.engine.checkpoint import save_checkpoint
from detection.models import build_detector
from detection.proposals import ProposalConfig, build_proposer

SIZE = 64
CATEGORIES = [{"id": 1, "name": "circle"}, {"id": 2, "name": "square"}]


def save_tiny_checkpoint(path: Path, family: str) -> Path:
    """An untrained `family` detector on the tiny backbone (input 64 px), saved as a checkpoint at `path`."""
    torch.manual_seed(0)
    cfg = config_from_dict({"data": {"input_size": SIZE},
                            "model": {"name": family, "backbone": "tiny", "neck_channels": 16}})
    model = build_detector(cfg.model, num_classes=len(CATEGORIES), input_size=SIZE)
    save_checkpoint(path, {"config": cfg.to_dict(), "model": model.state_dict(), "categories": CATEGORIES})
    return path


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return save_tiny_checkpoint(tmp_path_factory.mktemp("rpn") / "faster.pt", "faster_rcnn")


def image(height: int, width: int) -> np.ndarray:
    out = np.full((height, width, 3), 60, np.uint8)
    out[height // 4: height // 2, width // 3: width // 2] = 220
    return out


def test_rpn_boxes_are_the_networks_own_scaled_to_the_image(checkpoint):
    """Same boxes as running the RPN by hand on the letterboxed image, divided by the letterbox scale."""
    from detection.engine.checkpoint import load_model
    from detection.inference.predictor import Predictor

    proposer = build_proposer(ProposalConfig(method="rpn", checkpoint=str(checkpoint), min_size=0))
    picture = image(100, 160)
    boxes = proposer(picture)
    assert boxes.dtype == np.float32 and boxes.shape[1] == 4 and len(boxes) > 10
    assert (boxes[:, 2] <= 160).all() and (boxes[:, 3] <= 100).all() and (boxes[:, :2] >= 0).all()
    loaded = load_model(checkpoint)
    model = loaded.model
    predictor = Predictor(model, loaded.categories, SIZE, torch.device("cpu"))
    with torch.no_grad():
        images, _ = model.model.transform([predictor.preprocess(picture)])
        expected, _ = model.model.rpn(images, model.model.backbone(images.tensors))
    expected = expected[0].numpy() / letterbox_scale(100, 160, SIZE)
    expected[:, 0::2] = expected[:, 0::2].clip(0, 160)
    expected[:, 1::2] = expected[:, 1::2].clip(0, 100)
    np.testing.assert_allclose(boxes[:5], expected[:5], atol=1e-3)


def test_rpn_proposer_pickles_without_its_model_and_answers_the_same(checkpoint):
    proposer = build_proposer(ProposalConfig(method="rpn", checkpoint=str(checkpoint)))
    data = pickle.dumps(proposer)
    assert len(data) < 10_000, "the model travels as its checkpoint path, not its weights"
    picture = image(50, 40)
    np.testing.assert_array_equal(pickle.loads(data)(picture), proposer(picture))


def test_missing_or_no_checkpoint_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="needs a Faster R-CNN checkpoint"):
        build_proposer(ProposalConfig(method="rpn"))
    with pytest.raises(UserError, match="not found"):
        build_proposer(ProposalConfig(method="rpn", checkpoint=str(tmp_path / "none.pt")))


def test_checkpoint_of_another_family_is_a_user_error(tmp_path):
    path = save_tiny_checkpoint(tmp_path / "ssd.pt", "ssd")
    with pytest.raises(UserError, match=r"ssd.pt: the rpn proposal method needs a Faster R-CNN checkpoint.*ssd"):
        build_proposer(ProposalConfig(method="rpn", checkpoint=str(path)))


def test_cache_key_follows_the_checkpoints_content_not_its_path(tmp_path, checkpoint):
    import shutil

    copy = tmp_path / "copy.pt"
    shutil.copyfile(checkpoint, copy)
    key = ProposalConfig(method="rpn", checkpoint=str(checkpoint)).key()
    assert ProposalConfig(method="rpn", checkpoint=str(copy)).key() == key
    with open(copy, "ab") as handle:  # "retrained": other bytes at the same path
        handle.write(b"\0")
    assert ProposalConfig(method="rpn", checkpoint=str(copy)).key() != key
