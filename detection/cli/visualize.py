"""Look inside a trained detector on one image:
detpipe visualize --checkpoint CKPT --image IMG --out DIR [--layers a.b,c.d] [--detection K].

Writes DIR/features_<layer>.png (channel grids), DIR/filters.png (first-layer filters), DIR/saliency.png.
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

from datasets.core.errors import UserError, cli_main


def parse_args(argv: list[str] | None, prog: str = "detpipe visualize") -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="a .pt written by detection.train")
    parser.add_argument("--image", required=True, help="the image to look at")
    parser.add_argument("--out", required=True, help="folder for the PNGs")
    parser.add_argument("--layers", default="", help="module paths, comma-separated (python -m detection.inspect "
                                                     "lists them); default: the backbone's declared maps")
    parser.add_argument("--detection", type=int, help="explain the K-th best detection (1 = the best, default)")
    parser.add_argument("--channels", type=int, default=16, help="channels per feature-map grid (default 16)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    return parser.parse_args(argv)


def file_name(layer: str) -> str:
    return "features_" + re.sub(r"[^A-Za-z0-9_.-]", "_", layer) + ".png"


def write_feature_grids(predictor, pixels, layers: list[str], channels: int, out: Path) -> list[Path]:
    from datasets.view.plot import save_figure
    from detection.inspect.activations import capture_maps, innermost_backbone
    from detection.viz.features import DPI, feature_grid_figure

    declared = {} if layers else innermost_backbone(predictor.model).output_shape()
    written = []
    for name, fmap in capture_maps(predictor.model, pixels[None], layers).items():
        stride = declared[name].stride if name in declared else pixels.shape[-1] / fmap.shape[-1]
        save_figure(feature_grid_figure(name, fmap.numpy(), stride, channels), out / file_name(name), dpi=DPI)
        written.append(out / file_name(name))
    return written


def write_filters(predictor, out: Path) -> Path:
    from datasets.view.plot import save_figure
    from detection.inspect.activations import first_conv
    from detection.viz.features import DPI, filter_grid_figure

    name, conv = first_conv(predictor.model)
    save_figure(filter_grid_figure(name, conv.weight.detach().float().cpu().numpy()), out / "filters.png", dpi=DPI)
    return out / "filters.png"


def write_saliency(predictor, pixels, visible: tuple[int, int], rank: int | None, out: Path) -> Path | None:
    """saliency.png for the `rank`-th best detection; None (and a note) when the default finds no detection."""
    from datasets.view.plot import save_figure
    from detection.inspect.saliency import explain
    from detection.viz.features import DPI, saliency_figure

    try:
        found = explain(predictor.model, pixels, rank or 1)
    except UserError:
        if rank is not None:
            raise
        print("no detection on this image: saliency.png not written")
        return None
    height, width = visible
    image = (pixels.permute(1, 2, 0).cpu().numpy()[:height, :width] * 255).round().astype("uint8")
    category = predictor.categories[found.label - 1]["name"]
    title = (f"detection {found.rank} of {found.count}: {category} {found.score:.2f}, box "
             f"[{', '.join(f'{v:.0f}' for v in found.box)}] (xyxy, letterboxed {pixels.shape[-1]} px input)")
    figure = saliency_figure(image, found.box, found.gradient.numpy()[:height, :width],
                             found.cam.numpy()[:height, :width], title, found.gradient_scale, found.cam_map)
    save_figure(figure, out / "saliency.png", dpi=DPI)
    return out / "saliency.png"


@cli_main
def main(argv: list[str] | None = None, prog: str = "detpipe visualize") -> int:
    args = parse_args(argv, prog)
    if args.detection is not None and args.detection < 1:
        raise UserError(f"--detection counts from 1 (the best detection), got {args.detection}")
    if args.channels < 1:
        raise UserError(f"--channels must be at least 1, got {args.channels}")
    layers = [name.strip() for name in args.layers.split(",") if name.strip()]
    from datasets.core.images import read_rgb
    from detection.inference.predictor import Predictor

    image = read_rgb(args.image)
    predictor = Predictor.from_checkpoint(args.checkpoint, args.device, optimize=False)  # its own layers: maps, filters
    pixels = predictor.preprocess(image).to(predictor.device)
    scale = predictor.scale(image.shape[0], image.shape[1])
    visible = (max(1, round(image.shape[0] * scale)), max(1, round(image.shape[1] * scale)))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written = write_feature_grids(predictor, pixels, layers, args.channels, out)
    written.append(write_filters(predictor, out))
    written.append(write_saliency(predictor, pixels, visible, args.detection, out))
    for path in written:
        if path is not None:
            print(f"wrote {path}")
    return 0

