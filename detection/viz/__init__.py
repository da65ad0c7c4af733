"""Pictures of runs and evaluations: training curves, PR curves, confusion matrix, prediction gallery.

matplotlib (Agg backend) and OpenCV only: nothing here imports torch.
"""
