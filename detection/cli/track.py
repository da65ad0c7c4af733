"""Track objects through a video or a folder of frames:
python -m detection.track --source VIDEO|DIR --out DIR (--checkpoint CKPT [--init x,y,w,h] | --detections FILE).

Detections per frame (a detector, or MOTChallenge public detections) go through ByteTrack; writes OUT/<name>.txt
(MOTChallenge results: frame,id,x,y,w,h,score,-1,-1,-1, frames from 1) and OUT/<name>.mp4 with ids drawn.
A SiamFC tracker checkpoint with --init follows that one box instead: OUT/<name>.txt holds one OTB x,y,w,h line
per frame (track_sot.py).
"""
from __future__ import annotations

import argparse
import configparser
import contextlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np

from datasets.core.atomic import write_text
from datasets.core.images import read_bgr
from datasets.core.video import VIDEO_SUFFIXES, mp4_writer, open_video, video_fps, video_frames
from detection.errors import UserError, cli_main
from detection.predict import list_images
from detection.track_sot import SotStats, parse_init, run_single
Detections = tuple[np.ndarray, np.ndarray, np.ndarray]  # boxes [N, 4] xyxy, scores [N], classes [N]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m detection.track", description=__doc__.splitlines()[0])
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
    parser.add_argument("--high-threshold", type=float, default=0.5, help="first-association score (default 0.5)")
    parser.add_argument("--low-threshold", type=float, default=0.1, help="second-association score (default 0.1)")
    parser.add_argument("--new-track-threshold", type=float, default=0.6, help="score to start a track (default 0.6)")
    parser.add_argument("--match-iou", type=float, default=0.2, help="least IoU to continue a track (default 0.2)")
    parser.add_argument("--min-hits", type=int, default=2, help="detections to confirm a new track (default 2)")
    parser.add_argument("--max-age", type=int, default=30, help="frames a lost track waits to be found (default 30)")
    parser.add_argument("--class-aware", action="store_true", help="match detections only to tracks of their class")
    parser.add_argument("--max-detections", type=int, default=100, help="detector: boxes per frame (default 100)")
    parser.add_argument("--nms-iou", type=float, default=0.5,
                        help="detector: boxes overlapping a better one this much are dropped, whatever their class "
                        "(default 0.5; 1 keeps all)")
    parser.add_argument("--reid", metavar="REID.pt", help="a re-id embedder checkpoint (configs/reid_tiny.yaml): "
                        "ByteTrack adds an appearance cost from each detection's crop")
    parser.add_argument("--device", default="auto", help="detector or tracker: auto | cpu | cuda")
    parser.add_argument("--no-video", action="store_true", help="write the results file only")
    return parser.parse_args(argv)


@dataclass
class FrameSource:
    """Frames (BGR) of a video or a folder, how many there are (None if unknown), their rate, a name."""

    frames: Iterator[np.ndarray]
    count: int | None
    fps: float
    name: str


def folder_fps(folder: Path, given: float | None) -> float:
    """--fps, else the frameRate of a seqinfo.ini in or beside the folder, else 25."""
    if given:
        return given
    for ini in (folder / "seqinfo.ini", folder.parent / "seqinfo.ini"):
        if ini.is_file():
            parser = configparser.ConfigParser()
            with contextlib.suppress(configparser.Error, ValueError):
                parser.read(ini)
                return float(parser.get("Sequence", "frameRate", fallback="25"))
    return 25.0


def open_source(source: Path, args: argparse.Namespace, stack: contextlib.ExitStack) -> FrameSource:
    """The frames of --source: a video file, or the images of a folder in name order."""
    if not source.exists():
        raise UserError(f"source not found: {source}")
    if source.is_file():
        if source.suffix.lower() not in VIDEO_SUFFIXES:
            raise UserError(f"{source}: not a video ({', '.join(sorted(VIDEO_SUFFIXES))}) or a folder of frames")
        capture = open_video(source)
        stack.callback(capture.release)
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
        return FrameSource(video_frames(capture), count, args.fps or video_fps(capture), args.name or source.stem)
    files = list_images(source)
    named = source.parent if (source.parent / "seqinfo.ini").is_file() else source
    return FrameSource((read_bgr(f) for f in files), len(files), folder_fps(source, args.fps),
                       args.name or named.resolve().name)


def public_detections(path: str) -> Callable[[int, np.ndarray], Detections]:
    """Detections of frame n from a MOTChallenge detections file (class: its 8th column, -1 when absent)."""
    from detection.tracking.boxes import xywh_to_xyxy
    from detection.tracking.mot_io import read_mot

    rows = read_mot(path, "detections")
    by_frame = rows.by_frame()
    empty = (np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64))

    def detect(frame: int, _image: np.ndarray) -> Detections:
        index = by_frame.get(frame)
        if index is None:
            return empty
        return xywh_to_xyxy(rows.boxes[index]), rows.scores[index], rows.classes[index]

    return detect


def detection_arrays(dets: list[dict], nms_iou: float) -> Detections:
    """A detector's answer (dicts with COCO `bbox` [x, y, w, h], `score`, `category_id`) as the tracker's arrays,
    with boxes of other classes on the same object removed (class-agnostic NMS at nms_iou): one object, one track.
    Shared with the HTTP service, whose model deployment answers in these dicts."""
    import torch
    from torchvision.ops import nms

    from detection.tracking.boxes import xywh_to_xyxy

    boxes = xywh_to_xyxy(np.array([d["bbox"] for d in dets]).reshape(-1, 4))
    scores = np.array([d["score"] for d in dets], dtype=np.float64)
    keep = nms(torch.from_numpy(boxes), torch.from_numpy(scores), nms_iou).numpy()
    return boxes[keep], scores[keep], np.array([d["category_id"] for d in dets], dtype=np.int64)[keep]


def detector_detections(args: argparse.Namespace) -> Callable[[int, np.ndarray], Detections]:
    """Detections of a frame by the checkpoint's detector (scores from --low-threshold up), class-agnostic NMS
    at --nms-iou (detection_arrays)."""
    from detection.predictor import Predictor

    predictor = Predictor.from_checkpoint(args.checkpoint, args.device)

    def detect(_frame: int, image: np.ndarray) -> Detections:
        dets = predictor.predict([cv2.cvtColor(image, cv2.COLOR_BGR2RGB)], args.low_threshold,
                                 args.max_detections)[0]
        return detection_arrays(dets, args.nms_iou)

    return detect


def build_tracker(args: argparse.Namespace):
    """The TRACKERS entry `bytetrack` with the command line's settings."""
    from detection.registry import TRACKERS

    return TRACKERS.get("bytetrack")(
        high_threshold=args.high_threshold, low_threshold=args.low_threshold,
        new_track_threshold=args.new_track_threshold, match_iou=args.match_iou, min_hits=args.min_hits,
        max_age=args.max_age, class_aware=args.class_aware)


@dataclass
class RunStats:
    """What a run did: frames, distinct ids, seconds in all and in the tracker alone."""

    frames: int = 0
    ids: int = 0
    seconds: float = 0.0
    tracker_seconds: float = 0.0


def run_tracking(source: FrameSource, detect, tracker, video, stats: RunStats, embed=None) -> list[str]:
    """Every frame: detections, their embeddings (with an `embed` Embedder), tracker update, result lines, a drawn
    frame to `video` (when given)."""
    from tqdm import tqdm

    from detection.tracking.boxes import xyxy_to_xywh
    from detection.tracking.draw import draw_tracks
    from detection.tracking.mot_io import result_line

    lines, ids, size = [], set(), None
    for frame_id, image in enumerate(tqdm(source.frames, total=source.count, desc="track", disable=None), 1):
        if size is not None and image.shape[:2] != size:
            raise UserError(f"frame {frame_id} is {image.shape[1]}x{image.shape[0]}, the first was {size[1]}x{size[0]}")
        size = image.shape[:2]
        boxes, scores, classes = detect(frame_id, image)
        started = time.perf_counter()
        embeddings = None if embed is None else embed(image, boxes)
        tracks = tracker.update(boxes, scores, classes, embeddings)
        stats.tracker_seconds += time.perf_counter() - started
        lines += [result_line(frame_id, t.track_id, xyxy_to_xywh(t.box)[0], t.score) for t in tracks]
        ids.update(t.track_id for t in tracks)
        if video is not None:
            video.write(draw_tracks(image, tracks))
        stats.frames = frame_id
    if stats.frames == 0:
        raise UserError("--source: no frames could be read")
    stats.ids = len(ids)
    return lines


def check_inputs(args: argparse.Namespace) -> None:
    """UserErrors for what can be told before any frame is read."""
    if args.init is not None:
        if not args.checkpoint:
            raise UserError("--init needs --checkpoint CKPT, a SiamFC tracker (--detections feed the multi-object "
                            "tracker)")
        args.init_box = parse_init(args.init)
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


def load_single_tracker(args: argparse.Namespace):
    """The SiamFC tracker of --checkpoint; a detector's checkpoint is a UserError that says what --init needs."""
    from detection.tracking.load import NotATracker, load_tracker

    try:
        return load_tracker(args.checkpoint, args.device)
    except NotATracker as exc:
        raise UserError(f"--init needs a SiamFC tracker checkpoint; {exc}; without --init it tracks every object "
                        f"it detects") from None


def output_paths(out: Path, name: str, source: str) -> tuple[Path, Path]:
    """OUT/<name>.txt and OUT/<name>.mp4; UserError when either is the source itself."""
    results, drawn = out / f"{name}.txt", out / f"{name}.mp4"
    if Path(source).resolve() in (results.resolve(), drawn.resolve()):
        raise UserError(f"--out {out}: the results would overwrite the source {source}")
    return results, drawn


def main_single(args: argparse.Namespace) -> int:
    """--init: follow one box with a SiamFC checkpoint; OUT/<name>.txt (OTB lines) and OUT/<name>.mp4."""
    from tqdm import tqdm

    tracker = load_single_tracker(args)
    out, stats, started = Path(args.out), SotStats(), time.perf_counter()
    with contextlib.ExitStack() as stack:
        source = open_source(Path(args.source), args, stack)
        results, drawn = output_paths(out, source.name, args.source)
        video = None if args.no_video else stack.enter_context(mp4_writer(drawn, source.fps))
        frames = iter(tqdm(source.frames, total=source.count, desc="track", disable=None))
        lines = run_single(frames, tracker, args.init_box, args.init, video, stats)
        write_text(results, "".join(f"{line}\n" for line in lines))
    seconds = time.perf_counter() - started
    print(f"{stats.frames} frames, 1 target -> {results}" + ("" if args.no_video else f", {drawn}"))
    print(f"{stats.frames / max(seconds, 1e-9):.1f} frames/s in all, "
          f"{(stats.frames - 1) / max(stats.tracker_seconds, 1e-9):.0f} frames/s in the tracker alone")
    return 0


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    check_inputs(args)
    if args.init is not None:
        return main_single(args)
    tracker = build_tracker(args)
    embed = None
    if args.reid:
        from detection.tracking.reid import load_embedder

        embed = load_embedder(args.reid, args.device)
    detect = public_detections(args.detections) if args.detections else detector_detections(args)
    out, stats, started = Path(args.out), RunStats(), time.perf_counter()
    with contextlib.ExitStack() as stack:
        source = open_source(Path(args.source), args, stack)
        results, drawn = output_paths(out, source.name, args.source)
        video = None if args.no_video else stack.enter_context(mp4_writer(drawn, source.fps))
        lines = run_tracking(source, detect, tracker, video, stats, embed)
        write_text(results, "".join(f"{line}\n" for line in lines))
    stats.seconds = time.perf_counter() - started
    print(f"{stats.frames} frames, {stats.ids} tracks, {len(lines)} boxes -> {results}"
          + ("" if args.no_video else f", {drawn}"))
    print(f"{stats.frames / max(stats.seconds, 1e-9):.1f} frames/s in all, "
          f"{stats.frames / max(stats.tracker_seconds, 1e-9):.0f} frames/s in the tracker alone")
    return 0


if __name__ == "__main__":
    sys.exit(main())
