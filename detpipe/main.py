"""The `detpipe` dispatcher: `detpipe SUBCOMMAND [ARGS ...]` runs that subcommand's module with ARGS.

The table names each command's module; only the one asked for is imported (torch is not loaded for `data`).
Each module's `main(argv, prog)` parses its own arguments, so `detpipe train --help` is the train command's.
"""
from __future__ import annotations

import difflib
import importlib
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    module: str  # has main(argv: list[str] | None, prog: str) -> int
    summary: str


COMMANDS: dict[str, Command] = {
    "data": Command("datasets.cli", "build, convert, check, split, tile, count and draw COCO datasets"),
    "train": Command("detection.cli.train", "train a model from a YAML config: detpipe train CONFIG [key=value ...]"),
    "eval": Command("detection.cli.eval", "COCO mAP of a checkpoint on an annotated split, with pictures"),
    "predict": Command("detection.cli.predict", "detect objects in images, folders and videos"),
    "track": Command("detection.cli.track", "follow objects through a video (ByteTrack, or SiamFC from one box)"),
    "track-metrics": Command("detection.cli.track_metrics", "tracking metrics of result files against ground truth"),
    "audit": Command("detection.cli.audit", "rank likely label errors of a dataset with a trained detector"),
    "export": Command("detection.cli.export", "export a checkpoint to ONNX or TorchScript, post-processing included"),
    "inspect": Command("detection.cli.inspect", "see inside a model or backbone: layers, maps, receptive fields, anchor coverage"),
    "visualize": Command("detection.cli.visualize", "look inside a trained detector on one image: activations, saliency"),
    "proposals": Command("detection.cli.proposals", "region proposals for images: selective search, sliding window, RPN"),
    "plot": Command("detection.cli.plot", "compare training runs on one figure"),
    "weights": Command("detection.cli.weights", "pretrained weights: list, fetch, import torchvision's, remap classes"),
    "serve": Command("serve.cli", "serve checkpoints over HTTP with Ray Serve"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {command.summary}" for name, command in COMMANDS.items()]
    return ("usage: detpipe SUBCOMMAND [ARGS ...]   (detpipe SUBCOMMAND --help for its arguments)\n\n"
            "subcommands:\n" + "\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    """Run the subcommand argv[0] names; no arguments or --help lists them, an unknown one names close matches."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        close = difflib.get_close_matches(name, COMMANDS, n=3, cutoff=0.5)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        print(f"detpipe: unknown subcommand {name!r}{hint}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name].module)
    return int(module.main(rest, prog=f"detpipe {name}") or 0)
