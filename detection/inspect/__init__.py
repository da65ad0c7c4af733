"""See inside a model: the layer table (shapes, parameters, multiply-adds, receptive fields) and its feature maps.

`inspect_model(model, (C, H, W))` does the work; `python -m detection.inspect` prints it.
"""
from detection.inspect.layers import inspect_model
from detection.inspect.report import FeatureMap, Inspection, LayerRow

__all__ = ["inspect_model", "Inspection", "LayerRow", "FeatureMap"]
