"""Pictures of runs, evaluations and a model's insides: curves, PR, confusion, gallery, feature maps, saliency.

matplotlib (Agg backend) and OpenCV only: nothing here imports torch.
"""
