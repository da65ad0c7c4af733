"""Trackers from their checkpoints alone, for detection.cli.track and the HTTP service: `load_tracker` (SiamFC, one
box) and `load_embedder` (re-id, appearance for ByteTrack), each a caller of detection.engine.checkpoint.load_model."""
from __future__ import annotations

import os

from detection.config import family_of
from detection.engine.checkpoint import load_model
from detection.tracking.base import Embedder, SingleObjectTracker
from detection.tracking.reid import ReIDEmbedder


def load_tracker(checkpoint: str | os.PathLike, device: str = "cpu") -> SingleObjectTracker:
    """The tracker a `python -m detection.train` run of a tracker config saved (best.pt or last.pt), on `device`
    (auto | cpu | cuda), ready for `init(image, box)` then `update(image) -> (box, score)`: images RGB uint8
    [H, W, 3], boxes [4] xyxy in pixels, score in 0..1.

    One tracker follows one target at a time; `init` starts it afresh (all state is reset), so a caller may keep
    one per worker and reuse it request after request. UserError when the file is missing, not a checkpoint or
    its weights do not fit; WrongModelKind (a UserError) when it holds a detector or an embedder.
    """
    loaded = load_model(checkpoint, device, expect="siamfc")
    model_cfg = loaded.config.model
    return family_of(model_cfg.name)(loaded.model, model_cfg.options, loaded.device)


def load_embedder(checkpoint: str | os.PathLike, device: str = "cpu") -> Embedder:
    """The embedder a `python -m detection.train` run of a re-id config (e.g. configs/reid_tiny.yaml) saved, on
    `device` (auto | cpu | cuda). UserError when the file is missing, not a checkpoint, or not a re-id model."""
    loaded = load_model(checkpoint, device, expect="reid")
    return ReIDEmbedder(loaded.model, loaded.config.model.options, loaded.device)
