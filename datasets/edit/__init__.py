"""Edits: commands that make new COCO files from COCO files, `split`, `merge` and `tile`.

Each module is one command with a `run(args)` function; this package re-exports nothing.
"""
