"""Detectors, backbones, training engine and scripts.

Kept import-light: importing `detection` does not import torch.
"""
__version__ = "0.1.0"
