"""The fine-tune recipes (configs/finetune_*.yaml) build the model their import writes, so every weight loads."""
from __future__ import annotations

from detection.config import config_from_dict, load_config
from detection.weights.torchvision_import import import_config
from tiny_run import ROOT

# what the CPU recipe sets smaller than the import: training proposal counts only
CPU_ONLY = {"rpn_pre_nms_top_n_train", "rpn_post_nms_top_n_train", "box_batch_size_per_image"}


def models(recipe: str, name: str) -> tuple[dict, dict]:
    ours = load_config(ROOT / "configs" / recipe)
    theirs = config_from_dict(import_config(name, coco_file=True))
    assert ours.data.input_size == theirs.data.input_size
    return {**ours.to_dict()["model"], "pretrained": ""}, theirs.to_dict()["model"]


def test_gpu_recipe_is_the_import():
    recipe, imported = models("finetune_faster_rcnn_r50_fpn_v2.yaml", "fasterrcnn_resnet50_fpn_v2")
    assert recipe == imported


def test_cpu_recipe_is_the_import_but_for_its_training_proposals():
    recipe, imported = models("finetune_faster_rcnn_mobilenet_320.yaml", "fasterrcnn_mobilenet_v3_large_320_fpn")
    options = recipe.pop("faster_rcnn"), imported.pop("faster_rcnn")
    assert recipe == imported
    assert {k for k in options[0] if options[0][k] != options[1][k]} == CPU_ONLY
