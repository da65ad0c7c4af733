"""Export a checkpoint's detector, post-processing included, or a SiamFC tracker's two branches, to ONNX or
TorchScript: detpipe export --checkpoint CKPT --format onnx|torchscript --out FILE [--batch-size B].

The file carries categories, input size, family and post-processing settings; `python -m serve --onnx FILE`
serves it. A SiamFC checkpoint gives FILE-template.EXT and FILE-search.EXT (detection.deploy.siamfc). After
writing, the export is run on a few images (crops) and compared with PyTorch (onnxruntime for ONNX).
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from datasets.core.errors import UserError, cli_main

if TYPE_CHECKING:
    from detection.engine.checkpoint import LoadedModel


def parse_args(argv: list[str] | None, prog: str = "detpipe export") -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="a .pt written by detection.train (detector or siamfc)")
    parser.add_argument("--format", required=True, help="onnx | torchscript")
    parser.add_argument("--out", required=True, help="the file to write (.onnx, .pt); for siamfc, FILE-template.EXT "
                                                     "and FILE-search.EXT")
    parser.add_argument("--batch-size", type=int, default=1,
                        help="fixed batch of the families that score images one by one (faster_rcnn, fast_rcnn, "
                             "rcnn); ssd and yolo take any batch")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (16 at least)")
    parser.add_argument("--check-images", type=int, default=4,
                        help="synthetic images the export is compared with PyTorch on (0: no check)")
    return parser.parse_args(argv)


def check_args(args: argparse.Namespace) -> None:
    """UserError for values that cannot work, before the model is loaded."""
    from detection.deploy.formats import check_format, require

    check_format(args.format)
    if args.batch_size < 1 or args.check_images < 0:
        raise UserError("--batch-size must be at least 1 and --check-images at least 0")
    if args.opset < 16:
        raise UserError(f"--opset {args.opset}: 16 at least (RoIAlign's aligned mode)")
    if not Path(args.checkpoint).is_file():
        raise UserError(f"no checkpoint file at {args.checkpoint}")
    if args.format == "onnx":
        require("onnx", "--format onnx")
        require("onnxruntime", "--format onnx (the export is checked with onnxruntime)")


def check(model, args: argparse.Namespace, meta) -> str:
    """Compare the written file with PyTorch on synthetic images; UserError when they disagree."""
    from detection.deploy.check import compare, sample_images
    from detection.deploy.runtime import load_exported

    exported = load_exported(args.out, args.format)
    report = compare(model, exported, sample_images(args.check_images, meta.input_size))
    summary = (f"{report['detections']} detections on {report['images']} images, max box diff "
               f"{report['max_box_diff']:.2g} px, max score diff {report['max_score_diff']:.2g}")
    if report["tie_swaps"]:
        summary += f", {report['tie_swaps']} ties of equal scores broken the other way"
    if not report["match"]:
        raise UserError(f"{args.out}: the export disagrees with PyTorch ({summary}, "
                        f"{report['mismatched_images']} images with other detections)")
    return summary


def export_tracker(loaded: LoadedModel, args: argparse.Namespace) -> None:
    """The SiamFC branches to FILE-template.EXT and FILE-search.EXT, then checked on real crops."""
    import torch

    from detection.deploy.siamfc import export_siamfc_checkpoint
    from detection.deploy.siamfc_runtime import compare_siamfc, load_siamfc

    net, written = loaded.model, export_siamfc_checkpoint(loaded, args.format, args.out, args.opset)
    with torch.no_grad():
        features = ", ".join(map(str, net.embed(torch.zeros(1, 3, net.exemplar_size, net.exemplar_size)).shape[1:]))
    shapes = {"template": f"exemplars [B, 3, {net.exemplar_size}, {net.exemplar_size}] -> template [B, {features}]",
              "search": f"search [B, 3, H, W] (H = W = {net.search_size} when tracking), template [1 or B, "
                        f"{features}] -> response [B, 1, R, R] logits (R = {net.response_size})"}
    for branch, (path, _) in written.items():
        print(f"siamfc {branch} branch -> {path} ({args.format}, {path.stat().st_size / 1e6:.1f} MB); "
              f"{shapes[branch]}")
    if args.check_images:
        report = compare_siamfc(net, load_siamfc(args.out, args.format))
        summary = (f"max template diff {report['max_template_diff']:.2g} (largest value "
                   f"{report['template_peak']:.2g}), max response diff {report['max_response_diff']:.2g} (largest "
                   f"{report['response_peak']:.2g}) on {report['exemplars']} exemplar and {report['searches']} "
                   f"search crops of a synthetic frame")
        if not report["match"]:
            raise UserError(f"{args.out}: the exported branches disagree with PyTorch ({summary})")
        print(f"matches PyTorch: {summary}")


def export_detector(loaded: LoadedModel, args: argparse.Namespace) -> None:
    """The detector with its post-processing to --out, then compared with PyTorch on synthetic images."""
    from detection.deploy.exporter import export_checkpoint

    meta = export_checkpoint(loaded, args.format, args.out, args.batch_size, args.opset)
    free = ", ".join(sorted({label for axes in meta.dynamic_axes.values() for label in axes.values()}))
    print(f"{meta.family} -> {args.out} ({args.format}, {Path(args.out).stat().st_size / 1e6:.1f} MB); inputs "
          f"{', '.join(meta.inputs)}; batch {meta.batch or 'any'}; free axes: {free}")
    if args.check_images:
        print(f"matches PyTorch: {check(loaded.model, args, meta)}")


@cli_main
def main(argv: list[str] | None = None, prog: str = "detpipe export") -> int:
    args = parse_args(argv, prog)
    check_args(args)
    from detection.engine.checkpoint import load_model

    loaded = load_model(args.checkpoint, "cpu", expect=("detector", "siamfc"))
    if loaded.kind == "siamfc":
        export_tracker(loaded, args)
    else:
        export_detector(loaded, args)
    return 0
