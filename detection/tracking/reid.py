"""The appearance embedder for multi-object tracking (TRACKERS entry `reid`): crops each box as in training, runs a
trained ReIDNet and answers unit-norm embeddings; `load_embedder(checkpoint)` rebuilds it from a checkpoint alone."""
from __future__ import annotations

import os

import numpy as np
import torch

from detection.errors import UserError
from detection.registry import TRACKERS
from detection.tracking.base import Embedder, TrackerFamily
from detection.tracking.load import read_trained, trained_network
from detection.tracking.pairs import to_tensor
from detection.tracking.reid_crops import object_crop
from detection.tracking.reid_net import ReIDNet, build_reid_net
from detection.tracking.reid_options import ReIDOptions
from detection.utils.device import resolve_device


class ReIDEmbedder:
    """An Embedder: (image RGB uint8 [H, W, 3], boxes [N, 4] xyxy) -> embeddings [N, D] float32, unit-norm."""

    def __init__(self, net: ReIDNet, options: ReIDOptions | None = None, device: str | torch.device = "cpu") -> None:
        self.options = options or ReIDOptions()
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()

    @torch.no_grad()
    def __call__(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        if len(boxes) == 0:
            return np.zeros((0, self.net.project[-1].out_features), np.float32)
        crops = torch.stack([to_tensor(object_crop(image, box, self.options)) for box in boxes])
        return self.net(crops.to(self.device)).cpu().numpy().astype(np.float32)


def load_embedder(checkpoint: str | os.PathLike, device: str = "cpu") -> Embedder:
    """The embedder a `python -m detection.train` run of a re-id config (e.g. configs/reid_tiny.yaml) saved, on
    `device` (auto | cpu | cuda). UserError when the file is missing, not a checkpoint, or not a re-id model."""
    family, model_cfg, state = read_trained(checkpoint)
    if family.task != "reid":
        raise UserError(f"{checkpoint}: a {model_cfg.name} checkpoint, not a re-identification embedder (train one "
                        f"with model.name: reid, e.g. configs/reid_tiny.yaml)")
    network = trained_network(family, model_cfg, state, checkpoint)
    return ReIDEmbedder(network, model_cfg.options, resolve_device(device))


REID = TRACKERS.register("reid")(TrackerFamily(
    name="reid", options=ReIDOptions, build_network=build_reid_net, make_tracker=ReIDEmbedder, task="reid"))
