"""Running the SiamFC branch files of detection.export: `load_siamfc` (the two graphs), `exported_tracker` (the
SiamFC tracker on them, ONNX Runtime or TorchScript) and `compare_siamfc` (against PyTorch on real crops).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from datasets.core.errors import UserError
from datasets.synthetic.shapes import SynthOptions, render_image
from detection.tracking.crops import context_side, crop_square
from detection.tracking.siamfc import SiamFCTracker
from detection.tracking.siamfc_net import SiamFCNet
from detection.tracking.siamfc_options import TrackingOptions

from detection.deploy.metadata import ExportMetadata
from detection.deploy.runtime import Runner, onnx_runner, torchscript_runner
from detection.deploy.siamfc import BRANCHES, branch_path

RELATIVE_TOLERANCE = 1e-4  # of the largest PyTorch value of each output


class ExportedSiamFCNet:
    """The two branch graphs, answering as much of SiamFCNet as SiamFCTracker asks: sizes, stride, `embed` of
    exemplar crops, and `search` (search crops against a template; the tracker's `logits`)."""

    def __init__(self, metas: dict[str, ExportMetadata], runs: dict[str, Runner]) -> None:
        self.metas, self.runs = metas, runs
        info = metas["search"].tracker
        self.exemplar_size, self.search_size = info["exemplar_size"], info["search_size"]
        self.stride, self.response_size = info["stride"], info["response_size"]
        self.tracking = TrackingOptions(**info["tracking"])

    def to(self, device) -> "ExportedSiamFCNet":
        return self

    def eval(self) -> "ExportedSiamFCNet":
        return self

    def embed(self, exemplars: torch.Tensor) -> torch.Tensor:
        """exemplars [B, 3, Z, Z] in 0..1 -> template features [B, C, h, w]."""
        return self.runs["template"]([exemplars.detach().cpu().float().contiguous()])[0]

    def search(self, template: torch.Tensor, crops: torch.Tensor) -> torch.Tensor:
        """crops [N, 3, X, X] in 0..1 against template [1 or N, C, h, w] -> response logits [N, 1, R, R]."""
        return self.runs["search"]([crops.detach().cpu().float().contiguous(), template.contiguous()])[0]


def load_siamfc(out: str | Path, fmt: str = "onnx", threads: int = 0, cuda: bool = False,
                spin: bool = True) -> ExportedSiamFCNet:
    """The FILE-template / FILE-search pair that `detection.export --out FILE` wrote (FILE, or either branch file)
    under onnxruntime (`threads` intra-op threads, 0: its own; CUDA first when `cuda`; `spin` as onnx_runner's) or
    TorchScript; UserError when one is missing or is no SiamFC branch."""
    metas, runs = {}, {}
    for branch in BRANCHES:
        path = branch_path(out, branch)
        props, runs[branch] = onnx_runner(path, threads, cuda, spin) if fmt == "onnx" else torchscript_runner(path)
        metas[branch] = ExportMetadata.from_props(props, str(path))
        if (metas[branch].tracker or {}).get("branch") != branch:
            raise UserError(f"{path}: not the {branch} branch of a SiamFC tracker exported by detection.export")
    return ExportedSiamFCNet(metas, runs)


class ExportedSiamFCTracker(SiamFCTracker):
    """SiamFCTracker whose network calls (the template at init, the search crops each frame) run the exported
    branches; the rest (crops, window, scale update) is the PyTorch tracker's own code."""

    def logits(self, crops: list[np.ndarray]) -> np.ndarray:
        return self.net.search(self.kernel, self.tensor(crops))[:, 0].numpy()


def exported_tracker(out: str | Path, fmt: str = "onnx", threads: int = 0) -> ExportedSiamFCTracker:
    """A SingleObjectTracker on the exported branches, with the tracking options stored in them (the checkpoint's).
    Its pool threads sleep between frames (spin=False): a frame's crops and resizes run between two calls, and
    spinning threads would take the cores from them (63 against 123 frames/s on 2 cores, benchmarks/README.md)."""
    net = load_siamfc(out, fmt, threads, spin=False)
    return ExportedSiamFCTracker(net, net.tracking)  # type: ignore[arg-type]  # the duck-typed SiamFCNet


def sample_crops(net: SiamFCNet | ExportedSiamFCNet, scales: int = 3, seed: int = 0
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Real crops as the tracker cuts them: a synthetic shapes frame, one exemplar around its first shape and
    `scales` search crops around it -> exemplars [1, 3, Z, Z], searches [scales, 3, X, X], in 0..1."""
    rng = np.random.default_rng(seed)
    image, shapes = render_image(rng, SynthOptions(image_size=256, min_size=24, max_size=64))
    image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    rows, cols = np.nonzero(shapes[0][1])
    centre, size = np.array([cols.mean(), rows.mean()]), np.array([np.ptp(cols) + 1, np.ptp(rows) + 1])
    fill, side = image.reshape(-1, 3).mean(axis=0), context_side(*size)
    exemplar = crop_square(image, centre, side, net.exemplar_size, fill)
    ratio = net.search_size / net.exemplar_size
    searches = [crop_square(image, centre + 5, side * ratio * 1.05 ** k, net.search_size, fill)
                for k in range(-(scales // 2), scales // 2 + 1)]
    as_tensor = lambda crops: torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255  # noqa: E731
    return as_tensor([exemplar]), as_tensor(searches)


@torch.no_grad()
def compare_siamfc(net: SiamFCNet, exported: ExportedSiamFCNet, seed: int = 0) -> dict:
    """Both on the same real crops: template features and the response maps of the search crops against that
    template -> largest absolute differences, each output's largest value, and `match` (within 1e-4 of it)."""
    exemplars, searches = sample_crops(net, seed=seed)
    want_template = net.eval().embed(exemplars)
    got_template = exported.embed(exemplars)
    want = net.respond(want_template, net.embed(searches))
    got = exported.search(want_template, searches)
    report = {"exemplars": len(exemplars), "searches": len(searches)}
    for name, a, b in (("template", got_template, want_template), ("response", got, want)):
        if a.shape != b.shape:
            return {**report, "match": False, f"{name}_shapes": [list(a.shape), list(b.shape)]}
        report[f"max_{name}_diff"] = float((a - b).abs().max())
        report[f"{name}_peak"] = float(b.abs().max())
    report["match"] = all(report[f"max_{n}_diff"] <= RELATIVE_TOLERANCE * max(report[f"{n}_peak"], 1e-6)
                          for n in ("template", "response"))
    return report
