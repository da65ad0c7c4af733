"""torchvision's Faster R-CNN, SSD300 and SSDLite320 weights -> one of our checkpoints (config, weights, categories)
that rebuilds a model giving torchvision's own detections: the same architecture, resize and post-processing.

Label i stays torchvision's label i, the COCO category with id i (the unused ids of COCO's 91 are 'N/A').
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from datasets.core.errors import UserError
from detection.utils.io import read_torch_file
from detection.weights.catalog import WeightsEntry, cached_path, find
from detection.weights.remap import PLACEHOLDER, read_categories

CHECKPOINT_FORMAT = "detpipe-checkpoint"  # detection.engine.checkpoint.FORMAT


def faster_rcnn_key(ours: str, body: dict[str, str]) -> str:
    """Faster R-CNN: the family keeps torchvision's model under `model`; the backbone's stages map to the
    classification network's names (a MobileNet's without `features.`)."""
    key = ours.removeprefix("model.")
    if key.startswith("backbone.body."):
        return "backbone.body." + body[key.removeprefix("backbone.body.")].removeprefix("features.")
    return key


def ssd300_key(ours: str, body: dict[str, str]) -> str:
    """SSD300 (torchvision's SSDFeatureExtractorVGG): VGG's features up to conv4_3 keep their names; from pool4 to
    conv5_3 they are the start of `extra.0`, followed by pool5/fc6/fc7 as `extra.0.7`; the extra levels follow."""
    if ours.startswith("body.body."):
        index, rest = body[ours.removeprefix("body.body.")].removeprefix("features.").split(".", 1)
        if int(index) < 23:  # up to conv4_3's ReLU
            return f"backbone.features.{index}.{rest}"
        return f"backbone.extra.0.{int(index) - 23}.{rest}"
    if ours.startswith("body.fc."):
        return "backbone.extra.0.7." + ours.removeprefix("body.fc.")
    if ours.startswith("body.extra."):
        level, rest = ours.removeprefix("body.extra.").split(".", 1)
        return f"backbone.extra.{int(level) + 1}.{rest}"
    return ours.replace("body.", "backbone.", 1) if ours.startswith("body.") else ours


def ssdlite_key(ours: str, body: dict[str, str]) -> str:
    """SSDLite320 (torchvision's SSDLiteFeatureExtractorMobileNet): MobileNetV3's features up to block 13's expansion
    conv are `features.0`, the rest of block 13 and the last blocks `features.1`; the extra levels keep their names."""
    if not ours.startswith("body.body."):
        return ours.replace("body.", "backbone.", 1) if ours.startswith("body.") else ours
    index, rest = body[ours.removeprefix("body.body.")].removeprefix("features.").split(".", 1)
    if int(index) < 13:
        return f"backbone.features.0.{index}.{rest}"
    if int(index) > 13:
        return f"backbone.features.1.{int(index) - 13}.{rest}"
    part, rest = rest.removeprefix("block.").split(".", 1)  # block 13: its expansion conv, then the rest
    return f"backbone.features.0.13.{rest}" if part == "0" else f"backbone.features.1.0.{part}.{rest}"


@dataclass(frozen=True)
class Architecture:
    """How one torchvision detector is said in our config: family, backbone entry, neck, the family's options, and
    how its weight names and class rows read."""

    family: str  # faster_rcnn | ssd
    backbone: str
    neck: str
    trainable_layers: int  # freezes what torchvision's default trainable_backbone_layers freezes
    options: dict = field(default_factory=dict)  # model.<family>
    coco_eps: float | None = None  # the FrozenBatchNorm eps torchvision sets for its COCO file (overwrite_eps)
    model: dict = field(default_factory=dict)  # other model keys (features, postprocess)
    input_size: int = 0  # data.input_size; 0: options' min_size
    key: Callable[[str, dict[str, str]], str] = faster_rcnn_key  # our weight name -> torchvision's
    class_weight: str = "roi_heads.box_predictor.cls_score.weight"  # its dim 0 is rows_per_class x class rows
    rows_per_class: int = 1

    def class_rows(self, state: dict) -> int:
        """The class rows (background included) of torchvision weights `state`: 91 (COCO's) when it is not
        this architecture's."""
        weight = state.get(self.class_weight)
        if weight is None or weight.ndim == 0 or weight.shape[0] % self.rows_per_class:
            return 91
        return int(weight.shape[0]) // self.rows_per_class


RESIZE_800 = {"min_size": 800, "max_size": 1333}
MOBILENET = {"frozen_bn": True, "anchor_sizes_on_every_map": True, "rpn_score_thresh": 0.05}
# torchvision's ssd300_vgg16: DefaultBoxGenerator, 300 x 300 resize, VGG's Caffe normalisation on a 0..255 input,
# SSD.postprocess_detections (score > 0.01, 400 per class, NMS 0.45, 200 per image), smooth L1 with beta 1
SSD300 = {"scales": [0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05],
          "level_aspect_ratios": [[2.0], [2.0, 3.0], [2.0, 3.0], [2.0, 3.0], [2.0], [2.0]],
          "default_boxes": "torchvision", "steps": [8, 16, 32, 64, 100, 300], "fixed_size": 300,
          "image_mean": [0.48235, 0.45882, 0.40784], "image_std": [1.0 / 255.0] * 3,
          "iou_threshold": 0.5, "negative_ratio": 3.0, "head": "conv", "pre_nms_top_k": 400, "top_k_per_class": True,
          "box_loss_beta": 1.0}
# torchvision's ssdlite320_mobilenet_v3_large: DefaultBoxGenerator of ratios 2 and 3 on six maps, scales 0.2..0.95,
# 320 x 320 resize, normalisation to -1..1, score > 0.001, 300 per class, NMS 0.55, 300 per image
SSDLITE320 = {"min_scale": 0.2, "max_scale": 0.95, "aspect_ratios": [2.0, 3.0], "default_boxes": "torchvision",
              "fixed_size": 320, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "iou_threshold": 0.5,
              "negative_ratio": 3.0, "head": "lite", "pre_nms_top_k": 300, "top_k_per_class": True,
              "box_loss_beta": 1.0}
ARCHITECTURES: dict[str, Architecture] = {
    "fasterrcnn_resnet50_fpn": Architecture("faster_rcnn", "resnet50", "fpn", 3, {"frozen_bn": True, **RESIZE_800},
                                            coco_eps=0.0),
    "fasterrcnn_resnet50_fpn_v2": Architecture("faster_rcnn", "resnet50", "fpn_bn", 3,
                                               {"rpn_conv_depth": 2, "box_head_convs": 4, **RESIZE_800}),
    "fasterrcnn_mobilenet_v3_large_fpn": Architecture("faster_rcnn", "mobilenet_v3_large_det", "fpn", 2,
                                                      {**MOBILENET, **RESIZE_800}),
    "fasterrcnn_mobilenet_v3_large_320_fpn": Architecture(
        "faster_rcnn", "mobilenet_v3_large_det", "fpn", 2,
        {**MOBILENET, "min_size": 320, "max_size": 640, "rpn_pre_nms_top_n_test": 150, "rpn_post_nms_top_n_test": 150}),
    # trainable_layers 5: our VGG-16 has pool5 as a stage of its own (torchvision's default 4 freezes conv1)
    "ssd300_vgg16": Architecture(
        "ssd", "vgg16", "ssd300_vgg", 5, SSD300, input_size=300, key=ssd300_key,
        model={"features": ["c3", "c4"], "postprocess": {"score_threshold": 0.01, "nms_iou": 0.45,
                                                         "max_detections": 200, "class_agnostic": False}},
        class_weight="head.classification_head.module_list.0.weight", rows_per_class=4),
    "ssdlite320_mobilenet_v3_large": Architecture(
        "ssd", "mobilenet_v3_large_ssdlite", "ssdlite_extra", -1, SSDLITE320, input_size=320, key=ssdlite_key,
        model={"features": ["c4", "c5"], "postprocess": {"score_threshold": 0.001, "nms_iou": 0.55,
                                                         "max_detections": 300, "class_agnostic": False}},
        class_weight="head.classification_head.module_list.0.1.weight", rows_per_class=6),
}


def import_config(name: str, coco_file: bool) -> dict:
    """Our config (as a checkpoint stores it) for torchvision's `name`; `coco_file`: torchvision's own COCO weights."""
    arch = ARCHITECTURES[name]
    options = dict(arch.options)
    if coco_file and arch.coco_eps is not None:
        options["frozen_bn_eps"] = arch.coco_eps
    model = {"name": arch.family, "backbone": arch.backbone, "neck": arch.neck, "neck_channels": 256,
             "trainable_layers": arch.trainable_layers, **arch.model, arch.family: options}
    return {"data": {"input_size": arch.input_size or options["min_size"]}, "model": model}


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state_dict (or {'model': state_dict}) from a torch file; UserError when it is anything else."""
    state = read_torch_file(path, "weights file")
    if isinstance(state, dict) and state.get("format") == CHECKPOINT_FORMAT:
        raise UserError(f"{path}: a detpipe checkpoint, not torchvision weights (remap it with: detpipe weights "
                        f"import {path} --categories NEW.json --out NEW.pt)")
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict) or not state or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise UserError(f"{path}: not a state_dict (a mapping of weight names to tensors)")
    return state


def torchvision_shapes(name: str, rows: int) -> dict[str, tuple]:
    """The weight shapes of torchvision's `name` with `rows` class rows (built on the meta device)."""
    from torchvision.models import get_model

    with torch.device("meta"):
        model = get_model(name, weights=None, weights_backbone=None, num_classes=rows)
    return {k: tuple(v.shape) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}


def first_misfit(state: dict, name: str, rows: int) -> str:
    """'' when `state` fits torchvision's `name`; else what does not, first tensor first."""
    expected = torchvision_shapes(name, rows)
    for key, tensor in state.items():
        if key.endswith("num_batches_tracked"):
            continue
        if key not in expected:
            return f"it has {key!r}, which {name} has not"
        if tuple(tensor.shape) != expected[key]:
            return f"{key!r} has shape {tuple(tensor.shape)}, {name} expects {expected[key]}"
    missing = [key for key in expected if key not in state]
    return f"it lacks {missing[0]!r} (and {len(missing) - 1} more)" if missing else ""


def check_architecture(state: dict, name: str, path: Path) -> int:
    """The number of class rows (background included); UserError naming both architectures and the first tensor
    that does not fit when `state` is not torchvision's `name`."""
    rows = ARCHITECTURES[name].class_rows(state)
    problem = first_misfit(state, name, rows)
    if problem:
        fits = [other for other, arch in ARCHITECTURES.items()
                if other != name and not first_misfit(state, other, arch.class_rows(state))]
        what = " or ".join(f"torchvision:{n}" for n in fits) + " weights" if fits else "weights of another architecture"
        raise UserError(f"{path}: {what}, not torchvision:{name}: {problem}")
    return rows


def import_categories(entry: WeightsEntry, rows: int, path: Path, categories_file: str | None) -> list[dict]:
    """Label i -> the category with id i, for i in 1..rows-1: torchvision's COCO names, or a COCO file's."""
    if categories_file is None:
        names = list(entry.categories)
        if rows != len(names):
            raise UserError(f"{path}: {rows} class rows, not the {len(names)} of torchvision's COCO {entry.model}; "
                            f"give --categories COCO.json (label i is the category with id i)")
        return [{"id": i, "name": name} for i, name in enumerate(names[1:], 1)]
    given = read_categories(categories_file)
    if given[-1]["id"] >= rows:
        raise UserError(f"{categories_file}: category id {given[-1]['id']} has no class row in {path} "
                        f"({rows} rows: label 0 is background, ids 1..{rows - 1})")
    names = {c["id"]: c["name"] for c in given}
    return [{"id": i, "name": names.get(i, PLACEHOLDER)} for i in range(1, rows)]


def import_torchvision(name: str, out: str | Path, file: str | Path | None = None,
                       categories_file: str | None = None, overrides: list[str] | None = None) -> dict:
    """Write torchvision's `name` weights (`file`, default: torch's hub cache) as our checkpoint `out`; returns
    what was written (architecture, categories, config). UserError, with nothing written, on bad input."""
    from detection.backbones.torchvision_models import classifier_names
    from detection.config import config_from_dict
    from detection.engine.checkpoint import load_weights, save_checkpoint
    from detection.models import build_detector

    entry = find(name)
    if entry.kind == "backbone":
        raise UserError(f"torchvision:{entry.name} is a backbone's ImageNet weights, not a detector: start a "
                        f"training from them with model.backbone={entry.model} model.pretrained={cached_path(entry)}")
    if entry.model not in ARCHITECTURES:
        importable = ", ".join(f"torchvision:{n}" for n in ARCHITECTURES)
        raise UserError(f"torchvision:{entry.name} cannot be imported yet (importable: {importable})")
    path = Path(file) if file else cached_path(entry)
    if not path.is_file():
        hint = "" if file else f"; fetch it first: detpipe weights fetch {entry.name}"
        raise UserError(f"weights file not found: {path}{hint}")
    if Path(out).resolve() == path.resolve():
        raise UserError(f"--out {out} would overwrite the weights file it reads")
    state = read_state_dict(path)
    rows = check_architecture(state, entry.model, path)
    categories = import_categories(entry, rows, path, categories_file)
    cfg = config_from_dict(import_config(entry.model, coco_file=categories_file is None), overrides)
    model = build_detector(cfg.model, num_classes=len(categories), input_size=cfg.data.input_size)
    body = classifier_names(cfg.model.backbone)
    weights = {}
    for key, built in model.state_dict().items():
        theirs = ARCHITECTURES[entry.model].key(key, body)
        if theirs not in state and not key.endswith("num_batches_tracked"):  # check_architecture saw them all
            raise RuntimeError(f"no torchvision weight {theirs!r} for {key!r}")
        weights[key] = state.get(theirs, built)
    load_weights(model, weights, path)
    source = {"torchvision": entry.name, "weights": entry.weights, "file": str(path)}
    save_checkpoint(out, {"config": cfg.to_dict(), "model": model.state_dict(), "categories": categories,
                          "metrics": {}, "source": source})
    return {"out": str(out), "architecture": entry.model, "family": cfg.model.name, "backbone": cfg.model.backbone,
            "categories": len(categories), "input_size": cfg.data.input_size, **source}
