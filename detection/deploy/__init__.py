"""Exported detectors: graphs of every family with post-processing inside (ONNX, TorchScript), their metadata,
and running them (onnxruntime) like the PyTorch model; `python -m detection.export` is the script.
"""
