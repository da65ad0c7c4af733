"""Exported detectors: graphs of every family with post-processing inside (ONNX, TorchScript), their metadata,
and running them (onnxruntime) like the PyTorch model; detection.cli.export is the command, and the service's
OnnxPredictor sits beside the PyTorch Predictor in detection.inference.
"""
