"""Pictures of runs, evaluations, predictions and a model's insides: curves, PR, confusion, gallery, feature maps,
saliency, detections (detections.py) and tracks (tracks.py) drawn on frames. matplotlib (Agg) and OpenCV: no torch.
"""
