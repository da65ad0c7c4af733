"""Data: COCO reader, albumentations pipelines and collate for every detector."""
from detection.data.coco import CocoDetection, collate, load_coco
from detection.data.transforms import build_transform, letterbox_scale

__all__ = ["CocoDetection", "collate", "load_coco", "build_transform", "letterbox_scale"]
