"""Formats: convert VOC XML, YOLO txt, LabelMe JSON, CSV and instance masks to COCO (`convert`, `from-masks`),
and export COCO to the Ultralytics YOLO layout or a Pascal VOC folder (`export`), one module per format.
"""
