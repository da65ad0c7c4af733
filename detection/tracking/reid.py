"""The appearance embedder for multi-object tracking (TRACKERS entry `reid`): crops each box as in training, runs a
trained ReIDNet and answers unit-norm embeddings; detection.tracking.load.load_embedder makes one of a checkpoint."""
from __future__ import annotations

import numpy as np
import torch

from detection.registry import TRACKERS
from detection.tracking.base import TrackerFamily
from detection.tracking.pairs import to_tensor
from detection.tracking.reid_crops import object_crop
from detection.tracking.reid_net import ReIDNet, build_reid_net
from detection.tracking.reid_options import ReIDOptions


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


REID = TRACKERS.register("reid")(TrackerFamily(
    name="reid", options=ReIDOptions, build_network=build_reid_net, make_tracker=ReIDEmbedder, task="reid"))
