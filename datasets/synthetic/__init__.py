"""Synthetic data: shapes images with masks (`synth`), and tracking sequences made from a dataset's objects with
their ground truth and public detections (`sequences`).
"""
