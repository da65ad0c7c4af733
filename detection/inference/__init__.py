"""Running a trained detector on images: Predictor (a checkpoint, PyTorch), OnnxPredictor (an exported graph),
to_detections (outputs -> COCO answers) and predict_files (images, folders, videos: the predict command's work)."""
