"""Pretrained weights: torchvision's catalog, the one explicit download (fetch), imports and remapping by name.

`python -m detection.weights list|fetch|import` (detection.cli.weights); fine-tuning reads detection.weights.finetune.
"""
