"""Synthetic data: shapes images with masks (`synth`), harder digit glyphs on clutter (`glyphs`), and tracking
sequences made from a dataset's objects with their ground truth and public detections (`sequences`).
"""
