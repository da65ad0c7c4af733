"""Necks: what sits between a backbone's maps and a detector head.

`build_body` picks the maps a head uses and optionally adds an FPN over them.
"""
from detection.necks.fpn import FPN, SelectFeatures, build_body

__all__ = ["FPN", "SelectFeatures", "build_body"]
