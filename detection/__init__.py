"""Detectors, backbones, the training engine, inference and tracking as a library; the commands in detection/cli/.

Kept import-light: importing `detection` does not import torch.
"""
__version__ = "0.1.0"
