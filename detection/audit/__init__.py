"""Label errors found by a trained detector (python -m detection.audit): missing boxes, wrong classes, boxes that
miss their object and boxes over nothing, ranked most likely first, with a gallery to check them by eye."""
