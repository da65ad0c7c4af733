"""Sliced inference over HTTP: the query parameters slice, overlap, slice_full and slice_merge of /v1/detect and
/v1/detect/batch, and the SliceOptions a request gets (the service's default, the parameters it gives replacing)."""
from __future__ import annotations

import dataclasses
from typing import Literal

from fastapi import Query

from detection.inference.slice_options import MIN_SLICE, SliceOptions

SliceSize = Query(None, alias="slice", description=f"cut the image into SxS windows (at least {MIN_SLICE}; the "
                  "model's training tile size is a good S), run them through the model's batch queue and merge their "
                  "boxes; 0: the whole image at once; left out: the service's default (`slice` of its options, 0 "
                  "unless set). The image-size limits apply to the whole image all the same")
Overlap = Query(None, description="fraction of a window its neighbour shares, in [0, 0.9); left out: the service's "
                f"default ({SliceOptions().overlap} unless set)")
SliceFull = Query(None, description="with slice: also run the whole image once (catches objects larger than a "
                  "window); left out: the service's default")
SliceMerge = Query(None, description="with slice: merge boxes across windows by class-wise NMS (nms), or greedy NMM "
                   "by intersection over the smaller box (nmm: one box for an object a window border cut); left "
                   "out: the service's default")
Merge = Literal["nms", "nmm"]


def request_slicing(default: SliceOptions, size: int | None, overlap: float | None, full: bool | None,
                    merge: str | None) -> SliceOptions | None:
    """The slicing of one request: `default` with the parameters it gives; None when slice is 0 (off).
    UserError naming the parameter for a slice under MIN_SLICE or an overlap outside [0, 0.9)."""
    given = {"size": size, "overlap": overlap, "full": full, "merge": merge}
    options = dataclasses.replace(default, **{k: v for k, v in given.items() if v is not None}).check()
    return options if options.size else None


def slice_note(slicing: SliceOptions | None) -> str:
    """What an image-size error adds when the request asked for slicing: the limits hold all the same."""
    if slicing is None:
        return ""
    return (" (slicing does not lift the service's image-size limits, max_image_bytes and max_pixels: the whole "
            "image is received and decoded before it is cut into windows)")
