"""The I/O core the other floors use: atomic writes, COCO files, the user-error type, image and video files.

Import from the modules themselves (datasets.core.images, ...); this package re-exports nothing.
"""
