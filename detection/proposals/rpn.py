"""Proposals from the region proposal network of a trained Faster R-CNN checkpoint (method `rpn`).

The image is letterboxed to the checkpoint's input size; the RPN's boxes, best objectness first, are scaled back.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from datasets.core.errors import UserError
from detection.proposals.base import PROPOSERS, ProposalConfig
from detection.proposals.frame import ScaledProposer


def load_rpn_model(path: str | Path):
    """(torchvision GeneralizedRCNN with .transform, .backbone, .rpn in eval mode on CPU, input size S) of a
    Faster R-CNN checkpoint; UserError when the file is missing, unreadable or of another family."""
    from torchvision.models.detection.rpn import RegionProposalNetwork

    from detection.engine.checkpoint import load_model  # late: torch only where rpn is used

    if not str(path):
        raise UserError("proposals.checkpoint: the rpn method needs a Faster R-CNN checkpoint (.pt); none given")
    loaded = load_model(path, "cpu", expect="detector")
    cfg = loaded.config
    inner = getattr(loaded.model, "model", None)
    if not isinstance(getattr(inner, "rpn", None), RegionProposalNetwork):
        raise UserError(f"{path}: the rpn proposal method needs a Faster R-CNN checkpoint, "
                        f"this one is model.name={cfg.model.name}")
    return inner.eval(), cfg.data.input_size


class RPNProposer(ScaledProposer):
    """The RPN of a Faster R-CNN checkpoint as a proposer: boxes by objectness, at most the checkpoint's
    rpn_post_nms_top_n_test of them. Picklable: the model is rebuilt from the path in each process."""

    def __init__(self, checkpoint: str | Path, max_side: int = 500, min_size: int = 4) -> None:
        super().__init__(max_side, min_size)
        self.checkpoint = str(checkpoint)
        self._model, self.input_size = load_rpn_model(checkpoint)  # checked here: errors come at build time

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_model": None}

    def propose(self, image: np.ndarray) -> np.ndarray:
        """RGB uint8 [h, w, 3] -> boxes [P, 4] xyxy in its pixels, best objectness first."""
        import torch

        from detection.data.transforms import build_transform, letterbox_scale

        if self._model is None:
            self._model, self.input_size = load_rpn_model(self.checkpoint)
        size = self.input_size
        boxed = build_transform(size, train=False)(image=image, bboxes=np.zeros((0, 4), np.float32), labels=[])
        batch = torch.from_numpy(np.ascontiguousarray(boxed["image"])).permute(2, 0, 1).float().div_(255)[None]
        model = self._model
        model.transform.min_size, model.transform.max_size = (size,), size  # as FasterRCNN.forward: no resize
        with torch.no_grad():
            images, _ = model.transform(list(batch))
            features = model.backbone(images.tensors)
            if isinstance(features, torch.Tensor):  # one map: named as torchvision's GeneralizedRCNN names it
                features = {"0": features}
            boxes, _ = model.rpn(images, features)
        return boxes[0].numpy() / letterbox_scale(image.shape[0], image.shape[1], size)


@PROPOSERS.register("rpn")
def rpn(cfg: ProposalConfig) -> RPNProposer:
    """The RPN of the Faster R-CNN checkpoint `cfg.checkpoint` (cfg.mode is not used)."""
    return RPNProposer(cfg.checkpoint, cfg.max_side, cfg.min_size)
