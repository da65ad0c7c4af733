"""Data: the COCO reader (coco.py), albumentations pipelines (transforms.py), mosaic, multi-scale batches, proposals.

Import from the modules themselves; this package exports nothing.
"""
