"""COCO dataset tools: synthesise, convert, check, split, merge, tile, count and draw.

Run `python -m datasets --help`; each command is one module with a `run(args)` function.
"""
