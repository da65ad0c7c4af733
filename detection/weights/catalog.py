"""The weights this project knows: torchvision's detectors and the ImageNet weights of our registry's backbones.

Read from torchvision's own `Weights` enums (URL, file size, categories), so nothing here touches the network.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path

from datasets.core.errors import UserError

DETECTORS = ("fasterrcnn_resnet50_fpn", "fasterrcnn_resnet50_fpn_v2", "fasterrcnn_mobilenet_v3_large_fpn",
             "fasterrcnn_mobilenet_v3_large_320_fpn", "ssd300_vgg16", "ssdlite320_mobilenet_v3_large")
LICENCE = "BSD-3-Clause (torchvision) + {data} terms"  # torchvision's code licence; the data's terms apply too
HASH_REGEX = re.compile(r"-([a-f0-9]*)\.")  # torch.hub's: the sha256 prefix torchvision's file names carry


@dataclass(frozen=True)
class WeightsEntry:
    """One weights file: `name` is torchvision's model name (its DEFAULT weights) or model.WEIGHTS."""

    name: str
    model: str  # torchvision's model name
    weights: str  # the enum member, e.g. COCO_V1
    url: str
    size_mb: float
    licence: str
    kind: str  # detector | backbone
    categories: tuple[str, ...]  # torchvision's meta["categories"] (a detector's: index = label)

    @property
    def file_name(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @property
    def sha256_prefix(self) -> str:
        found = HASH_REGEX.search(self.file_name)
        return found.group(1) if found else ""


def cache_dir() -> Path:
    """torch's own hub cache, where torchvision looks too: $TORCH_HOME/hub/checkpoints."""
    import torch  # late: `list` is the only reason to import it here

    return Path(torch.hub.get_dir()) / "checkpoints"


def cached_path(entry: WeightsEntry) -> Path:
    return cache_dir() / entry.file_name


def _entries(model: str, kind: str) -> list[WeightsEntry]:
    from torchvision.models import get_model_weights

    enum = get_model_weights(model)
    default = enum.DEFAULT if hasattr(enum, "DEFAULT") else next(iter(enum))
    found = []
    for member in enum:
        data = "COCO" if kind == "detector" else "ImageNet"
        name = model if member is default else f"{model}.{member.name}"
        found.append(WeightsEntry(name=name, model=model, weights=member.name, url=member.url,
                                  size_mb=float(member.meta.get("_file_size", 0.0)),
                                  licence=LICENCE.format(data=data), kind=kind,
                                  categories=tuple(member.meta.get("categories") or ()) if kind == "detector" else ()))
    return sorted(found, key=lambda e: (e.name != model, e.name))


def backbone_models() -> list[str]:
    """Our registry's backbones that are torchvision classification networks."""
    import torchvision

    from detection.backbones import list_backbones

    known = set(torchvision.models.list_models())
    return [name for name in list_backbones() if name in known]


def catalog() -> list[WeightsEntry]:
    """Every known weights file: the detectors first, then the backbones, each model's default first."""
    entries = [e for model in DETECTORS for e in _entries(model, "detector")]
    return entries + [e for model in backbone_models() for e in _entries(model, "backbone")]


def find(name: str) -> WeightsEntry:
    """The entry called `name` (a leading 'torchvision:' is allowed); UserError with close matches."""
    name = name.removeprefix("torchvision:")
    entries = {e.name: e for e in catalog()}
    if name in entries:
        return entries[name]
    close = difflib.get_close_matches(name, list(entries), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise UserError(f"unknown weights {name!r}{hint} (detpipe weights list shows them all)")
