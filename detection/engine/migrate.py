"""Upgrades of older checkpoints to the current format, one step per version, so trained models keep working.

`upgrade(state, to)` is applied by `load_checkpoint`; each step rewrites the stored config (and weight names).
"""
from __future__ import annotations

import copy
from typing import Callable


def v1_to_v2(state: dict) -> dict:
    """Format 1 (one family, before the detector contract) -> 2.

    model.fpn (bool) -> model.neck (fpn | none); model.fpn_channels -> model.neck_channels;
    model.faster_rcnn.{box_score_thresh, box_nms_thresh, detections_per_img} -> model.postprocess.
    Weight names are unchanged: the Faster R-CNN family keeps torchvision's model under `model`.
    """
    state = copy.copy(state)
    config = copy.deepcopy(state["config"])
    model = config.setdefault("model", {})
    if "fpn" in model:
        model["neck"] = "fpn" if model.pop("fpn") else "none"
    if "fpn_channels" in model:
        model["neck_channels"] = model.pop("fpn_channels")
    family = model.get(model.get("name", "faster_rcnn"), {})
    moved = {"box_score_thresh": "score_threshold", "box_nms_thresh": "nms_iou", "detections_per_img": "max_detections"}
    post = {new: family.pop(old) for old, new in moved.items() if old in family}
    model["postprocess"] = {**post, **model.get("postprocess", {})}
    state["config"] = config
    return state


def v2_to_v3(state: dict) -> dict:
    """Format 2 -> 3: train.warmup_iters (a multiplier of the schedule, in steps) gave way to train.warmup_epochs
    (before the schedule); the stored value is dropped, so a resumed run warms up by the default."""
    state = copy.copy(state)
    config = copy.deepcopy(state["config"])
    config.get("train", {}).pop("warmup_iters", None)
    state["config"] = config
    return state


def v3_to_v4(state: dict) -> dict:
    """Format 3 -> 4: the `vgg16` backbone's maps end at conv3_3, conv4_3, conv5_3 (and pool5) since format 4; before,
    they were the outputs of pool2..pool5. A checkpoint of the old cut names `vgg16_pooled`, that cut under another
    name, so it rebuilds the model it was trained as (the same weight names, the same maps)."""
    model = state.get("config", {}).get("model", {})
    if model.get("backbone") != "vgg16":
        return state
    state = copy.copy(state)
    config = copy.deepcopy(state["config"])
    config["model"]["backbone"] = "vgg16_pooled"
    state["config"] = config
    return state


STEPS: dict[int, Callable[[dict], dict]] = {1: v1_to_v2, 2: v2_to_v3, 3: v3_to_v4}


def upgrade(state: dict, to: int) -> dict:
    """`state` rewritten step by step from its format_version (1 when absent) up to `to`."""
    version = int(state.get("format_version", 1))
    while version < to:
        state = STEPS[version](state)
        version += 1
    return {**state, "format_version": version}
