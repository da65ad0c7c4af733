"""See inside a model: the layer table (shapes, parameters, multiply-adds, receptive fields) and its feature maps.

`detection.inspect.layers.inspect_model(model, (C, H, W))` does the work; `python -m detection.inspect` prints it.
"""
