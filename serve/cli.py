"""`detpipe serve --checkpoint CKPT [NAME=CKPT ...] [--onnx [NAME=]FILE ...] [--tracker SIAMFC]`: serve over HTTP.

Binds to 127.0.0.1:8000 unless told otherwise; Ctrl-C or SIGTERM shuts down cleanly (`python -m serve` runs it too).
"""
from __future__ import annotations

import argparse
import signal
import sys
import time

from datasets.core.errors import UserError, cli_main

from detection.cli.slicing_args import add_slice_arguments
from serve.options import NAME_RE, ServiceOptions
from serve.supervise import in_child, supervise


def parse_args(argv: list[str] | None, prog: str = "detpipe serve") -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", action="append", default=[], metavar="[NAME=]PATH",
                   help="a checkpoint to serve; repeat for several models (name defaults to its run folder)")
    p.add_argument("--onnx", action="append", default=[], metavar="[NAME=]FILE",
                   help="an .onnx file from detection.export, served by ONNX Runtime on CPU without its checkpoint")
    p.add_argument("--name", help="model name when one --checkpoint or --onnx is given without NAME=")
    p.add_argument("--tracker", metavar="[NAME=]PATH",
                   help="a SiamFC checkpoint: POST /v1/track?init=x,y,w,h follows one box with it")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--replicas", type=int, default=1, help="replicas per model")
    p.add_argument("--colocate", choices=("auto", "yes", "no"), default="auto",
                   help="run the detectors inside the HTTP replica, one hop fewer (auto: when serving one detector "
                        "and no tracker); no: a deployment per model, scaled apart from the HTTP front")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1, ...")
    p.add_argument("--torch-threads", type=int, default=0,
                   help="torch threads per replica (default: Ray's, one per replica CPU; more can thrash a busy box)")
    p.add_argument("--max-batch-size", type=int, default=8)
    p.add_argument("--batch-wait-ms", type=float, default=0.0,
                   help="how long a batch waits to fill (default 0: it takes what queued while the model was busy)")
    p.add_argument("--max-queued-requests", type=int, default=128,
                   help="requests waiting for a replica, per deployment, before 503 + Retry-After (-1: no limit)")
    p.add_argument("--max-image-mb", type=float, default=20.0, help="largest accepted image body")
    p.add_argument("--max-megapixels", type=float, default=40.0, help="largest accepted image (width*height)")
    p.add_argument("--max-video-mb", type=float, default=32.0, help="largest accepted video body (/v1/track)")
    p.add_argument("--max-video-frames", type=int, default=300, help="most frames of a video (/v1/track)")
    p.add_argument("--max-video-megapixels", type=float, default=0.9216,
                   help="largest video frame (width*height, /v1/track; default 1280x720)")
    p.add_argument("--access-log", action="store_true", help="log every request (costs throughput)")
    p.add_argument("--api-key-env", default="DETECT_API_KEY",
                   help="environment variable holding the API key; when set, /v1/ needs 'Bearer <key>'")
    add_slice_arguments(p)  # the default of /v1/detect requests; ?slice=, ?overlap=, ... override it
    return p.parse_args(argv)


def options_from_args(args: argparse.Namespace) -> dict:
    """The service options (build_app's dict) for the command line."""
    checkpoints = list(args.checkpoint) + onnx_files(args.onnx)
    if not checkpoints:
        raise UserError("give a model to serve: --checkpoint CKPT or --onnx FILE")
    if args.name and not NAME_RE.match(args.name):
        raise UserError(f"--name {args.name!r}: use letters, digits, '_', '.', '-' (at most 64)")
    if args.name:
        if len(checkpoints) != 1 or ("=" in checkpoints[0] and NAME_RE.match(checkpoints[0].split("=")[0])):
            raise UserError("--name goes with exactly one --checkpoint or --onnx PATH; for several use NAME=PATH")
        checkpoints = [f"{args.name}={checkpoints[0]}"]
    if not 1 <= args.port <= 65535:
        raise UserError(f"--port must be within 1..65535, got {args.port}")
    return {"checkpoints": checkpoints, "replicas": args.replicas, "device": args.device,
            "colocate": {"auto": None, "yes": True, "no": False}[args.colocate],
            "torch_threads": args.torch_threads,
            "max_batch_size": args.max_batch_size, "batch_wait_timeout_s": args.batch_wait_ms / 1000,
            "max_queued_requests": args.max_queued_requests,
            "max_image_bytes": int(args.max_image_mb * 1024 * 1024),
            "max_pixels": int(args.max_megapixels * 1_000_000), "api_key_env": args.api_key_env,
            "access_log": args.access_log, "tracker": args.tracker,
            "max_video_bytes": int(args.max_video_mb * 1024 * 1024), "max_video_frames": args.max_video_frames,
            "max_video_pixels": int(round(args.max_video_megapixels * 1_000_000)),
            "slice": args.slice, "overlap": args.overlap, "slice_full": args.slice_full,
            "slice_merge": args.slice_merge}


def onnx_files(values: list[str]) -> list[str]:
    """--onnx values as model entries; the service runs a model by ONNX Runtime when its file ends in .onnx."""
    for value in values:
        if not value.lower().endswith(".onnx"):
            raise UserError(f"--onnx {value}: expected an .onnx file written by detection.export")
    return list(values)


def _interrupt(*_) -> None:
    raise KeyboardInterrupt


@cli_main
def main(argv: list[str] | None = None, prog: str = "detpipe serve") -> int:
    """Check the options, then run the service in a child process (serve.supervise) that runs this again."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv, prog)
    options = options_from_args(args)
    if not in_child():
        ServiceOptions.from_dict(options)  # a bad option or checkpoint is an error here, before any child starts
        return supervise(argv)
    from serve import launch

    for sig in (signal.SIGTERM, signal.SIGINT):  # SIGTERM stops as cleanly as Ctrl-C, even while starting
        signal.signal(sig, _interrupt)
    started = False
    try:
        url = launch.start(options, host=args.host, port=args.port)
        started = True
        print(f"serving {', '.join(launch.served_models(options))} at {url} (docs: {url}/docs); "
              "Ctrl-C to stop", flush=True)
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):  # a second signal must not cut the shutdown short
            signal.signal(sig, signal.SIG_IGN)
        if started:
            print("shutting down", flush=True)
        launch.stop()
    return 0
