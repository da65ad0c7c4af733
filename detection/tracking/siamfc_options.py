"""The SiamFC tracker's options, read from `model.siamfc` of a config: network, training pairs, tracking, validation.

Small dataclasses grouped by who reads them; `check(prefix)` names the key of a value out of range.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from datasets.core.errors import UserError


@dataclass
class PairOptions:
    """How training pairs are cut (`model.siamfc.pairs`); shifts and scales are of the search crop."""

    context: float = 0.5  # crops span the box plus context * (w + h) around it, as at tracking time
    max_shift: int = 32  # search crop pixels the target may sit off centre, each axis
    scale_jitter: float = 0.05  # the search crop's scale varies by up to this fraction (stretch: half of it per axis)
    color: float = 0.5  # probability of a colour jitter (brightness, contrast, saturation, hue) on each crop
    blur: float = 0.2  # probability of a Gaussian or motion blur on the search crop
    gray: float = 0.05  # probability that both crops are grey
    negative: float = 0.2  # share of negative pairs: the search crop centred on another object (label all 0)
    distractor: float = 0.5  # share of negatives whose search centre is an object of the target's class
    sequence_gap: int = 50  # frames apart the exemplar and search of a sequence pair may be, at most
    pairs_per_epoch: int = 0  # pairs an epoch samples; 0: one per object (COCO) or per sequence frame

    def check(self, prefix: str) -> None:
        for key in ("color", "blur", "gray", "negative", "distractor"):
            if not 0 <= getattr(self, key) <= 1:
                raise UserError(f"config key '{prefix}{key}' must be within 0..1, got {getattr(self, key)}")
        if self.context < 0 or self.max_shift < 0 or not 0 <= self.scale_jitter < 1:
            raise UserError(f"config keys '{prefix}context', '{prefix}max_shift' must be >= 0 and "
                            f"'{prefix}scale_jitter' in [0, 1), got {self.context}, {self.max_shift}, "
                            f"{self.scale_jitter}")
        if self.sequence_gap < 1 or self.pairs_per_epoch < 0:
            raise UserError(f"config keys '{prefix}sequence_gap' >= 1 and '{prefix}pairs_per_epoch' >= 0, got "
                            f"{self.sequence_gap}, {self.pairs_per_epoch}")


@dataclass
class TrackingOptions:
    """Tracking time (`model.siamfc.tracking`), the paper's values by default (SiamFC-3s)."""

    context: float = 0.5  # exemplar side = sqrt((w + p)(h + p)), p = context * (w + h)
    scales: int = 3  # search scales, an odd number: 3 or 5
    scale_step: float = 1.0375  # ratio between neighbouring scales
    scale_penalty: float = 0.9745  # multiplies the response of every scale but the current one
    scale_lr: float = 0.59  # damping: the size moves this fraction of the way to the chosen scale
    window_influence: float = 0.176  # weight of the cosine window against the normalised response
    upsample: int = 16  # response upsampling factor (bicubic)

    def check(self, prefix: str) -> None:
        if self.scales < 1 or self.scales % 2 == 0:
            raise UserError(f"config key '{prefix}scales' must be an odd number (1, 3, 5), got {self.scales}")
        for key in ("scale_penalty", "scale_lr", "window_influence"):
            if not 0 <= getattr(self, key) <= 1:
                raise UserError(f"config key '{prefix}{key}' must be within 0..1, got {getattr(self, key)}")
        if self.scale_step < 1 or self.upsample < 1 or self.context < 0:
            raise UserError(f"config keys '{prefix}scale_step' >= 1, '{prefix}upsample' >= 1 and "
                            f"'{prefix}context' >= 0, got {self.scale_step}, {self.upsample}, {self.context}")


@dataclass
class ValOptions:
    """Sequences the validation tracks (`model.siamfc.val`), made once from data.val's COCO split."""

    sequences: int = 4
    frames: int = 40
    size: int = 256  # frame side, pixels
    objects: int = 3  # per sequence: the target, a distractor of its class, others

    def check(self, prefix: str) -> None:
        if self.sequences < 1 or self.frames < 2 or self.size < 64 or self.objects < 2:
            raise UserError(f"config keys '{prefix}sequences' >= 1, '{prefix}frames' >= 2, '{prefix}size' >= 64 "
                            f"and '{prefix}objects' >= 2, got {self.sequences}, {self.frames}, {self.size}, "
                            f"{self.objects}")


@dataclass
class SiamFCOptions:
    """The network (crop sizes, response) and the groups above. The backbone map is `model.features[0]`, by
    default its stride-8 one; `model.backbone`, `model.pretrained` and `model.trainable_layers` work as for
    detectors."""

    exemplar_size: int = 127  # exemplar crop side z, pixels
    search_size: int = 255  # search crop side x; x - z must be a multiple of the map's stride
    adjust: int = 0  # channels of a 1x1 convolution after the backbone (0: none)
    response_scale: float = 0.001  # the cross-correlation is multiplied by this (then a learned bias added)
    radius: float = 16.0  # search-crop pixels around the target centre whose response cells are positive
    pairs: PairOptions = field(default_factory=PairOptions)
    tracking: TrackingOptions = field(default_factory=TrackingOptions)
    val: ValOptions = field(default_factory=ValOptions)

    def check(self, prefix: str) -> None:
        if not 16 <= self.exemplar_size < self.search_size:
            raise UserError(f"config keys '{prefix}exemplar_size' ({self.exemplar_size}) and '{prefix}search_size' "
                            f"({self.search_size}): need 16 <= exemplar_size < search_size")
        if self.adjust < 0 or not self.response_scale > 0 or not self.radius > 0:
            raise UserError(f"config keys '{prefix}adjust' >= 0, '{prefix}response_scale' > 0 and '{prefix}radius' "
                            f"> 0, got {self.adjust}, {self.response_scale}, {self.radius}")
        for group in dataclasses.fields(self):
            value = getattr(self, group.name)
            if hasattr(value, "check"):
                value.check(f"{prefix}{group.name}.")
