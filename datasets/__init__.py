"""COCO dataset tools: synthesise, convert, check, split, merge, tile, count and draw; `python -m datasets --help`.

Sub-packages, along the real seams (each command is one module with a `run(args)` function, see cli.py):
  core/       the I/O the other floors use: atomic writes, COCO files, the user-error type, images, video
  formats/    convert to COCO from VOC, YOLO, LabelMe, CSV and masks, and export to YOLO and VOC
  synthetic/  generated data: shapes images, and tracking sequences made from a dataset's objects
  checks/     validate and repair a COCO file, statistics, YOLO anchors
  edit/       new COCO files from COCO files: split, merge, tile
  view/       pictures of a dataset: drawn annotations, the statistics figure
"""
