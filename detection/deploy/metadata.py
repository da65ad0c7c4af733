"""What an exported model carries beside its graph, so it runs without the checkpoint: family, input size,
categories, post-processing, inputs and which axes are free; stored as string pairs (ONNX metadata_props).
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

from datasets.core.errors import UserError
from detection.config import PostprocessConfig
from detection.proposals.base import ProposalConfig

FORMAT = "detpipe-export"
FORMAT_VERSION = 2  # 2: a detector's graph takes the input score_threshold and holds MAX_DETECTIONS_LIMIT rows
TAG, VERSION_TAG = "detpipe_format", "detpipe_format_version"


@dataclass
class ExportMetadata:
    """Everything a runtime needs to feed an exported graph and read its outputs (see padded.py)."""

    family: str  # DETECTORS entry the graph came from
    input_size: int  # S: images are letterboxed to S x S, as in the checkpoint's config
    categories: list[dict]  # COCO categories; label i (1..K) is categories[i - 1]
    postprocess: dict  # PostprocessConfig fields, applied inside the graph; score_threshold and max_detections are
    # the defaults of a call that gives none (format 1 graphs have the threshold built in: a call can only raise it)
    inputs: list[str]  # ["images", "score_threshold"], with "proposals" for families that take them (format 1:
    # ["images"] or ["images", "proposals"])
    dynamic_axes: dict[str, dict[str, str]]  # input/output name -> {axis: name} of axes of any size
    batch: int | None = None  # the graph's fixed batch size; None when the batch axis is free
    proposals: dict | None = None  # ProposalConfig fields: how a runtime makes the proposals input
    name: str = "model"
    version: str = "0"
    metrics: dict = field(default_factory=dict)
    tracker: dict | None = None  # a SiamFC branch (deploy/siamfc.py): branch, crop sizes, stride, tracking options

    def postprocess_config(self) -> PostprocessConfig:
        return PostprocessConfig(**self.postprocess)

    def proposal_config(self) -> ProposalConfig | None:
        return None if self.proposals is None else ProposalConfig(**self.proposals)

    def to_props(self) -> dict[str, str]:
        """{key: JSON text}, plus the format tags."""
        props = {key: json.dumps(value) for key, value in dataclasses.asdict(self).items()}
        return {TAG: FORMAT, VERSION_TAG: str(FORMAT_VERSION), **props}

    @classmethod
    def from_props(cls, props: dict[str, str], source: str) -> "ExportMetadata":
        """Read back `to_props`; UserError naming `source` when the model was not exported by detection.export."""
        if props.get(TAG) != FORMAT:
            raise UserError(f"{source}: not a model exported by detection.export (no '{TAG}: {FORMAT}' metadata)")
        if int(props.get(VERSION_TAG, 0)) > FORMAT_VERSION:
            raise UserError(f"{source}: export format {props[VERSION_TAG]} is newer than this code")
        names = [f.name for f in dataclasses.fields(cls)]
        required = [f.name for f in dataclasses.fields(cls)
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        missing = [name for name in required if name not in props]
        if missing:
            raise UserError(f"{source}: export metadata lacks {', '.join(missing)}")
        try:
            return cls(**{name: json.loads(props[name]) for name in names if name in props})
        except (TypeError, ValueError) as exc:
            raise UserError(f"{source}: export metadata is unreadable ({exc})") from None
