"""A single-object tracker from its checkpoint alone: `load_tracker(path, device)`, for detection.track and the
HTTP service. The checkpoint's config names the tracker (model.name: siamfc); a detector's is refused."""
from __future__ import annotations

import dataclasses
import os
from typing import Any

from torch import nn

from detection.config import ModelConfig, family_of
from detection.engine.checkpoint import checkpoint_config, load_checkpoint, load_weights
from detection.errors import UserError
from detection.tracking.base import SingleObjectTracker
from detection.utils.device import resolve_device


class NotATracker(UserError):
    """The checkpoint holds a detector or another model that is not a single-object tracker (a re-id embedder)."""


def load_tracker(checkpoint: str | os.PathLike, device: str = "cpu") -> SingleObjectTracker:
    """The tracker a `python -m detection.train` run of a tracker config saved (best.pt or last.pt), on `device`
    (auto | cpu | cuda), ready for `init(image, box)` then `update(image) -> (box, score)`: images RGB uint8
    [H, W, 3], boxes [4] xyxy in pixels, score in 0..1.

    One tracker follows one target at a time; `init` starts it afresh (all state is reset), so a caller may keep
    one per worker and reuse it request after request. UserError when the file is missing, not a checkpoint or
    its weights do not fit; NotATracker (a UserError) when it holds a detector.
    """
    family, model_cfg, state = read_trained(checkpoint)
    if family.task == "detection":
        raise NotATracker(f"{checkpoint}: a {model_cfg.name} detector checkpoint, not a single-object tracker "
                          f"(train one with model.name: siamfc, e.g. configs/siamfc_tiny.yaml)")
    if family.task != "siamfc":
        raise NotATracker(f"{checkpoint}: a {model_cfg.name} model ({family.task}), not a single-object tracker "
                          f"(train one with model.name: siamfc, e.g. configs/siamfc_tiny.yaml)")
    return family(trained_network(family, model_cfg, state, checkpoint), model_cfg.options, resolve_device(device))


def read_trained(checkpoint: str | os.PathLike) -> tuple[Any, ModelConfig, dict]:
    """(the family its config names, its model config, the checkpoint's state): what a tracking checkpoint
    holds, before its network is built. UserError when the file is missing or not a checkpoint."""
    state = load_checkpoint(checkpoint)
    model_cfg = checkpoint_config(state, checkpoint).model
    return family_of(model_cfg.name), model_cfg, state


def trained_network(family: Any, model_cfg: ModelConfig, state: dict, checkpoint: str | os.PathLike) -> nn.Module:
    """The family's network with the checkpoint's weights. The backbone's starting weights (model.pretrained)
    are not read: the checkpoint holds every weight."""
    network = family.build_network(dataclasses.replace(model_cfg, pretrained=""))
    load_weights(network, state["model"], checkpoint)
    return network
