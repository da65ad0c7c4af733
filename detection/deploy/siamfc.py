"""The SiamFC tracker's two branches as exported graphs, split as pysot and OpenCV's Siamese trackers ship them:
FILE-template.EXT (exemplar crops -> template features), FILE-search.EXT (search crops + template -> response).

Both take any batch; the search crop's side is free too. deploy/siamfc_runtime.py runs them (and tracks with them).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from detection.engine.checkpoint import LoadedModel
from detection.tracking.siamfc_net import SiamFCNet
from detection.tracking.siamfc_options import TrackingOptions

from detection.deploy.formats import OPSET, write
from detection.deploy.graphs import GRAPHS, GraphSpec, graph_spec
from detection.deploy.metadata import ExportMetadata
from detection.deploy.padded import row_index

BRANCHES = ("template", "search")


def branch_path(out: str | Path, branch: str) -> Path:
    """FILE -> FILE-<branch> before its extension: model.onnx -> model-template.onnx, model-search.onnx."""
    out = Path(out)
    for other in BRANCHES:  # given a branch file itself: its pair's base name
        if out.stem.endswith(f"-{other}"):
            out = out.with_name(out.stem[:-len(other) - 1] + out.suffix)
    return out.with_name(f"{out.stem}-{branch}{out.suffix}")


def correlate(templates: torch.Tensor, search: torch.Tensor) -> torch.Tensor:
    """SiamFCNet's cross-correlation with the batch left free: templates [K, C, h, w] (K = 1, shared by every
    crop, or K = N, one each) and search features [N, C, H, W] -> [N, 1, R, R]. One plain conv scores every crop
    against every template ([N, K, R, R]; a grouped conv would fix N in the graph), then each crop keeps its own."""
    every = F.conv2d(search, templates)
    own = torch.minimum(row_index(search[:, 0, 0, 0]), row_index(templates[:, 0, 0, 0])[-1])
    return every.gather(1, own.view(-1, 1, 1, 1).expand(-1, 1, every.shape[-2], every.shape[-1]))


class TemplateGraph(nn.Module):
    """exemplars [B, 3, Z, Z] RGB in 0..1 -> template features [B, C, h, w] (the net normalises)."""

    def __init__(self, net: SiamFCNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, exemplars: torch.Tensor) -> torch.Tensor:
        return self.net.embed(exemplars)


class SearchGraph(nn.Module):
    """search [N, 3, X, X] RGB in 0..1 and template [1 or N, C, h, w] -> response logits [N, 1, R, R]."""

    def __init__(self, net: SiamFCNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, search: torch.Tensor, template: torch.Tensor) -> torch.Tensor:
        return correlate(template, self.net.embed(search)) * self.net.response_scale + self.net.bias


@GRAPHS.register("siamfc_template")
def template_graph(net: SiamFCNet, batch: int) -> GraphSpec:
    """Traced with two exemplars, so no axis of size 1 gets special-cased; `batch` is unused (always free). The
    exemplar side stays fixed: the template is the search branch's convolution kernel, whose size ONNX fixes."""
    axes = {"exemplars": {0: "batch"}, "template": {0: "batch"}}
    example = (torch.rand(2, 3, net.exemplar_size, net.exemplar_size, generator=torch.Generator().manual_seed(0)),)
    return GraphSpec(TemplateGraph(net).eval(), example, ["exemplars"], ["template"], axes, None)


@GRAPHS.register("siamfc_search")
def search_graph(net: SiamFCNet, batch: int) -> GraphSpec:
    axes = {"search": {0: "batch", 2: "height", 3: "width"}, "template": {0: "templates"},
            "response": {0: "batch", 2: "r_height", 3: "r_width"}}
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        template = net.embed(torch.rand(2, 3, net.exemplar_size, net.exemplar_size, generator=generator))
    example = (torch.rand(2, 3, net.search_size, net.search_size, generator=generator), template)
    return GraphSpec(SearchGraph(net).eval(), example, ["search", "template"], ["response"], axes, None)


def tracker_info(net: SiamFCNet, branch: str, tracking: TrackingOptions | None) -> dict:
    """What a runtime needs beside the graphs to track as SiamFCTracker does (ExportMetadata.tracker)."""
    return {"branch": branch, "exemplar_size": net.exemplar_size, "search_size": net.search_size,
            "stride": net.stride, "response_size": net.response_size,
            "tracking": dataclasses.asdict(tracking or TrackingOptions())}


def export_siamfc(net: SiamFCNet, fmt: str, out: str | Path, tracking: TrackingOptions | None = None,
                  opset: int = OPSET, **identity) -> dict[str, tuple[Path, ExportMetadata]]:
    """Write the template and search branches of `net` as `fmt` to FILE-template.EXT and FILE-search.EXT ->
    {branch: (path, metadata)}. When the second file cannot be written, the first is removed."""
    net.eval()
    written = {}
    try:
        for branch in BRANCHES:
            spec = graph_spec(f"siamfc_{branch}", net, 1)
            axes = {key: {str(axis): label for axis, label in value.items()}
                    for key, value in spec.dynamic_axes.items()}
            size = net.exemplar_size if branch == "template" else net.search_size
            meta = ExportMetadata(family="siamfc", input_size=size, categories=[], postprocess={},
                                  inputs=list(spec.input_names), dynamic_axes=axes, batch=None,
                                  tracker=tracker_info(net, branch, tracking), **identity)
            write(fmt, spec, meta, branch_path(out, branch), opset)
            written[branch] = (branch_path(out, branch), meta)
    except BaseException:
        for path, _ in written.values():
            path.unlink(missing_ok=True)
        raise
    return written


def export_siamfc_checkpoint(loaded: LoadedModel, fmt: str, out: str | Path, opset: int = OPSET
                             ) -> dict[str, tuple[Path, ExportMetadata]]:
    """Export the branches of a SiamFC checkpoint's network (load_model(path, expect="siamfc"));
    {branch: (path, metadata)}."""
    from detection.deploy.exporter import checkpoint_identity

    options = loaded.config.model.options
    tracking = options.tracking if options is not None else None
    identity = checkpoint_identity(loaded.config, loaded.state, loaded.path)
    return export_siamfc(loaded.model, fmt, out, tracking, opset, **identity)
