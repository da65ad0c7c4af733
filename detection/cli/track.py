"""Track objects through a video or a folder of frames:
detpipe track --source VIDEO|DIR --out DIR (--checkpoint CKPT [--init x,y,w,h] | --detections FILE).

Detections per frame (a detector, or MOTChallenge public detections) go through ByteTrack; writes OUT/<name>.txt
(MOTChallenge results: frame,id,x,y,w,h,score,-1,-1,-1, frames from 1) and OUT/<name>.mp4 with ids drawn.
A SiamFC tracker checkpoint with --init follows that one box instead: OUT/<name>.txt holds one OTB x,y,w,h line
per frame. The work is detection.tracking's track_frames and follow_box.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator

from datasets.core.atomic import write_text
from datasets.core.errors import UserError, cli_main
from detection.tracking.base import TrackingStats
from detection.tracking.bytetrack import ByteTrackOptions
from detection.tracking.multi import MAX_DETECTIONS, NMS_IOU

Results = Iterator[tuple[list[str], Callable]]  # per frame: result lines, and a thunk that draws the frame


def parse_args(argv: list[str] | None, prog: str = "detpipe track") -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True, help="a video file or a folder of frames (sorted by name)")
    parser.add_argument("--out", required=True, help="output folder for <name>.txt and <name>.mp4")
    given = parser.add_mutually_exclusive_group()
    given.add_argument("--checkpoint", help="a .pt written by detection.train: a detector (detect every frame) or, "
                       "with --init, a SiamFC tracker")
    given.add_argument("--detections", help="MOTChallenge public detections: frame,-1,x,y,w,h,score[,...] a line")
    parser.add_argument("--init", metavar="X,Y,W,H", help="single-object tracking of this box of the first frame "
                        "(pixels) with a SiamFC --checkpoint")
    parser.add_argument("--name", help="results name (default: the video's stem or the folder's name)")
    parser.add_argument("--fps", type=float, help="frame rate of a folder's MP4 (default: its seqinfo.ini, or 25)")
    parser.add_argument("--max-detections", type=int, default=MAX_DETECTIONS,
                        help=f"detector: boxes per frame (default {MAX_DETECTIONS})")
    parser.add_argument("--nms-iou", type=float, default=NMS_IOU,
                        help="detector: boxes overlapping a better one this much are dropped, whatever their class "
                        f"(default {NMS_IOU}; 1 keeps all)")
    parser.add_argument("--reid", metavar="REID.pt", help="a re-id embedder checkpoint (configs/reid_tiny.yaml): "
                        "ByteTrack adds an appearance cost from each detection's crop")
    parser.add_argument("--device", default="auto", help="detector or tracker: auto | cpu | cuda")
    parser.add_argument("--no-video", action="store_true", help="write the results file only")
    add_option_flags(parser.add_argument_group("ByteTrack (multi-object tracking)"), ByteTrackOptions)
    return parser.parse_args(argv)


def add_option_flags(group, options: type) -> None:
    """A flag per field of the dataclass `options` (--high-threshold for high_threshold), with the field's type,
    default and the help text of its metadata."""
    for field in dataclasses.fields(options):
        flag, text = "--" + field.name.replace("_", "-"), field.metadata["help"]
        if isinstance(field.default, bool):
            action = argparse.BooleanOptionalAction if field.default else "store_true"
            group.add_argument(flag, action=action, default=field.default, help=text)
        else:
            metavar = "N" if isinstance(field.default, int) else "X"
            group.add_argument(flag, type=type(field.default), default=field.default, metavar=metavar,
                               help=f"{text} (default {field.default:g})")


def options_from_args(args: argparse.Namespace, options: type):
    """The dataclass `options` with the values of its flags."""
    return options(**{field.name: getattr(args, field.name) for field in dataclasses.fields(options)})


def check_inputs(args: argparse.Namespace) -> None:
    """UserErrors for what can be told before any frame is read."""
    from detection.tracking.single import parse_box

    if args.init is not None:
        if not args.checkpoint:
            raise UserError("--init needs --checkpoint CKPT, a SiamFC tracker (--detections feed the multi-object "
                            "tracker)")
        args.init_box = parse_box(args.init, "--init")
    if not args.checkpoint and not args.detections:
        raise UserError("give --checkpoint CKPT (a detector) or --detections FILE (MOTChallenge public detections)")
    if args.fps is not None and not args.fps > 0:
        raise UserError(f"--fps must be positive, got {args.fps}")
    if args.reid and args.init is not None:
        raise UserError("--reid feeds the multi-object tracker; --init follows one box without it")
    if args.max_detections < 1:
        raise UserError("--max-detections must be at least 1")
    if not 0 < args.nms_iou <= 1:
        raise UserError(f"--nms-iou must be in (0, 1], got {args.nms_iou}")
    options_from_args(args, ByteTrackOptions).check()


def output_paths(out: Path, name: str, source: str) -> tuple[Path, Path]:
    """OUT/<name>.txt and OUT/<name>.mp4; UserError when either is the source itself."""
    results, drawn = out / f"{name}.txt", out / f"{name}.mp4"
    if Path(source).resolve() in (results.resolve(), drawn.resolve()):
        raise UserError(f"--out {out}: the results would overwrite the source {source}")
    return results, drawn


def write_run(args: argparse.Namespace, results_of: Callable[[Iterable], Results]) -> tuple[int, Path, Path]:
    """Open --source, take each frame's result lines (and drawing) from `results_of(frames)`, write OUT/<name>.txt
    and, unless --no-video, OUT/<name>.mp4; (result lines, the two paths)."""
    from tqdm import tqdm

    from datasets.core.video import mp4_writer
    from detection.inference.sources import open_frames

    with contextlib.ExitStack() as stack:
        source = open_frames(Path(args.source), stack, args.fps, args.name)
        results, drawn = output_paths(Path(args.out), source.name, args.source)
        video = None if args.no_video else stack.enter_context(mp4_writer(drawn, source.fps))
        lines = []
        for frame_lines, draw in results_of(tqdm(source.frames, total=source.count, desc="track", disable=None)):
            lines += frame_lines
            if video is not None:
                video.write(draw())
        write_text(results, "".join(f"{line}\n" for line in lines))
    return len(lines), results, drawn


def detections_of(args: argparse.Namespace):
    """The per-frame detections: --detections (public), else the --checkpoint detector's from --low-threshold up."""
    from detection.tracking.multi import detector_detections, public_detections

    if args.detections:
        return public_detections(args.detections)
    from detection.inference.predictor import Predictor

    predictor = Predictor.from_checkpoint(args.checkpoint, args.device)
    return detector_detections(predictor, args.low_threshold, args.max_detections, args.nms_iou)


def track_many(args: argparse.Namespace) -> int:
    """ByteTrack over the frames' detections: OUT/<name>.txt (MOTChallenge lines) and OUT/<name>.mp4."""
    from detection.tracking.boxes import xyxy_to_xywh
    from detection.tracking.load import load_embedder
    from detection.tracking.mot_io import result_line
    from detection.tracking.multi import track_frames
    from detection.viz.tracks import draw_tracks

    embed = load_embedder(args.reid, args.device) if args.reid else None
    detect, options = detections_of(args), options_from_args(args, ByteTrackOptions)
    stats, ids, started = TrackingStats(), set(), time.perf_counter()

    def results_of(frames: Iterable) -> Results:
        for frame in track_frames(frames, detect, options, embed, stats):
            ids.update(t.track_id for t in frame.tracks)
            yield ([result_line(frame.index, t.track_id, xyxy_to_xywh(t.box)[0], t.score) for t in frame.tracks],
                   functools.partial(draw_tracks, frame.image, frame.tracks))

    boxes, results, drawn = write_run(args, results_of)
    seconds = time.perf_counter() - started
    print(f"{stats.frames} frames, {len(ids)} tracks, {boxes} boxes -> {results}"
          + ("" if args.no_video else f", {drawn}"))
    print(f"{stats.frames / max(seconds, 1e-9):.1f} frames/s in all, "
          f"{stats.frames / max(stats.tracker_seconds, 1e-9):.0f} frames/s in the tracker alone")
    return 0


def load_single_tracker(args: argparse.Namespace):
    """The SiamFC tracker of --checkpoint; another kind of checkpoint is a UserError that says what --init needs."""
    from detection.engine.checkpoint import WrongModelKind
    from detection.tracking.load import load_tracker

    try:
        return load_tracker(args.checkpoint, args.device)
    except WrongModelKind as exc:
        raise UserError(f"--init needs a SiamFC tracker checkpoint; {exc}; without --init it tracks every object "
                        f"it detects") from None


def follow_one(args: argparse.Namespace) -> int:
    """--init: follow one box with a SiamFC checkpoint; OUT/<name>.txt (OTB lines) and OUT/<name>.mp4."""
    from detection.tracking.single import follow_box
    from detection.viz.tracks import draw_target

    tracker = load_single_tracker(args)
    stats, started = TrackingStats(), time.perf_counter()

    def results_of(frames: Iterable) -> Results:
        for frame in follow_box(frames, tracker, args.init_box, stats):
            x1, y1, x2, y2 = frame.box
            yield [f"{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f}"], functools.partial(
                draw_target, frame.image, frame.box, frame.score)

    _, results, drawn = write_run(args, results_of)
    seconds = time.perf_counter() - started
    print(f"{stats.frames} frames, 1 target -> {results}" + ("" if args.no_video else f", {drawn}"))
    print(f"{stats.frames / max(seconds, 1e-9):.1f} frames/s in all, "
          f"{(stats.frames - 1) / max(stats.tracker_seconds, 1e-9):.0f} frames/s in the tracker alone")
    return 0


@cli_main
def main(argv: list[str] | None = None, prog: str = "detpipe track") -> int:
    args = parse_args(argv, prog)
    check_inputs(args)
    return follow_one(args) if args.init is not None else track_many(args)
