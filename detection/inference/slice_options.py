"""The options of sliced inference (window size, overlap, whole-image pass, merge), checked: what the predict, eval
and serve flags, a service's config and an HTTP request give; torch-free, so commands parse without loading it."""
from __future__ import annotations

from dataclasses import dataclass

from datasets.core.errors import UserError

MIN_SLICE = 32
MERGES = ("nms", "nmm")


@dataclass
class SliceOptions:
    """size: the window side in pixels (0: no slicing, the whole image at once); overlap: the fraction of a window
    its neighbour shares; full: add one whole-image pass (catches objects larger than a window); merge: "nms"
    (class-wise NMS) or "nmm" (greedy merge of same-class boxes whose intersection over the smaller box is at least
    merge_threshold: one box for an object a window border cut); batch: windows per model call."""

    size: int = 0
    overlap: float = 0.2
    full: bool = False
    merge: str = "nms"
    merge_threshold: float = 0.5
    batch: int = 8

    def check(self) -> "SliceOptions":
        """These options, or a UserError naming the parameter that is out of range."""
        if self.size and self.size < MIN_SLICE:
            raise UserError(f"slice must be 0 (off) or at least {MIN_SLICE} pixels, got {self.size}")
        if not 0 <= self.overlap < 0.9:
            raise UserError(f"overlap must be in [0, 0.9), got {self.overlap}")
        if self.merge not in MERGES:
            raise UserError(f"merge must be one of {', '.join(MERGES)}, got {self.merge!r}")
        if not 0 < self.merge_threshold <= 1:
            raise UserError(f"merge threshold must be in (0, 1], got {self.merge_threshold}")
        if self.batch < 1:
            raise UserError(f"slice batch must be at least 1, got {self.batch}")
        return self
