"""Checks of a COCO file: the rules (rules.py), `validate` and its repaired copy (repair.py), `stats` and YOLO
`anchors` from the boxes.
"""
