"""Predict on an image, a folder of images or a video:
python -m detection.predict --checkpoint CKPT --source IMAGE|DIR|VIDEO --out DIR [--score-threshold T].

Writes DIR/predictions.json (COCO results with file_name; image_id from --annotations when given) and drawn copies.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import cv2

from datasets.core.images import IMAGE_SUFFIXES, write_image
from datasets.core.images import list_images as images_under
from datasets.core.video import VIDEO_SUFFIXES, Mp4Writer, mp4_writer, open_video, video_fps, video_frames
from detection.config import DEFAULT_MAX_DETECTIONS, DEFAULT_SCORE_THRESHOLD
from detection.errors import UserError, cli_main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m detection.predict", description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="a .pt written by detection.train")
    parser.add_argument("--source", required=True, help="an image, a folder of images, or a video file")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--score-threshold", type=float, metavar="T",
                        help="the model's score threshold for this run, below or above its checkpoint's (default: "
                             f"the checkpoint's model.postprocess.score_threshold, {DEFAULT_SCORE_THRESHOLD} unless "
                             "its config set another)")
    parser.add_argument("--max-detections", type=int, metavar="N",
                        help="detections per image, more or fewer than the checkpoint's (default: its "
                             f"model.postprocess.max_detections, {DEFAULT_MAX_DETECTIONS} unless its config set "
                             "another)")
    parser.add_argument("--annotations", help="COCO file whose image ids the results should carry")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--no-draw", action="store_true", help="write predictions.json only")
    return parser.parse_args(argv)


def list_images(source: Path) -> list[Path]:
    if source.is_dir():
        files = [source / rel for rel in images_under(source)]
        if not files:
            raise UserError(f"{source}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
        return files
    if source.suffix.lower() in IMAGE_SUFFIXES:
        return [source]
    raise UserError(f"{source}: not an image ({', '.join(IMAGE_SUFFIXES)}), video or folder")


def relative_name(file: Path, source: Path) -> str:
    """The image's name as results and drawn copies carry it: its path below a --source folder."""
    return file.relative_to(source).as_posix() if source.is_dir() else file.name


def check_not_inputs(files: list[Path], source: Path, out: Path, no_draw: bool) -> None:
    """UserError when a drawn copy would overwrite one of the input images (--out is the --source folder)."""
    inputs = {f.resolve() for f in files}
    drawn = [] if no_draw else [(out / relative_name(f, source)).resolve() for f in files]
    clash = next((d for d in drawn if d in inputs), None)
    if clash is not None:
        raise UserError(f"--out {out}: a drawn copy would overwrite the input {clash}; pick another folder")


def image_ids(files: list[Path], source: Path, annotations: str | None) -> list[int]:
    """Ids from --annotations (matched by file_name, else by base name), else 1..N in file order."""
    if not annotations:
        return list(range(1, len(files) + 1))
    from detection.data import load_coco

    images = load_coco(annotations).dataset["images"]
    by_name = {im["file_name"]: im["id"] for im in images}
    by_base = {Path(im["file_name"]).name: im["id"] for im in images}
    ids = []
    for file in files:
        found = by_name.get(relative_name(file, source), by_base.get(file.name))
        if found is None:
            raise UserError(f"{file}: no image with this file_name in {annotations}")
        ids.append(found)
    return ids


def predict_images(predictor, files: list[Path], ids: list[int], source: Path,
                   args: argparse.Namespace) -> list[dict]:
    """Results for every image; drawn copies (OUT/<relative name>, same name and format as the image)
    appear only if every image succeeds."""
    from datasets.core.images import read_rgb

    results = []
    staging = Path(tempfile.mkdtemp(prefix=".predict-", dir=args.out))
    try:
        for start in range(0, len(files), args.batch_size):
            chunk = files[start:start + args.batch_size]
            images = [read_rgb(f) for f in chunk]
            answers = predictor.predict(images, args.score_threshold, args.max_detections)
            for file, image_id, image, dets in zip(chunk, ids[start:], images, answers):
                name = relative_name(file, source)
                results += [{"image_id": image_id, "file_name": name, **d} for d in dets]
                if not args.no_draw:
                    save_drawing(image, dets, staging / name)
        for drawn in sorted(p for p in staging.rglob("*") if p.is_file()):
            target = Path(args.out) / drawn.relative_to(staging)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(drawn, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return results


def save_drawing(image, detections: list[dict], path: Path) -> None:
    from detection.utils.draw import draw_detections

    write_image(path, draw_detections(cv2.cvtColor(image, cv2.COLOR_RGB2BGR), detections))


def predict_video(predictor, video: Path, args: argparse.Namespace) -> list[dict]:
    """Every frame through the model; results carry image_id = frame number (from 1); writes OUT/<stem>.mp4."""
    capture = open_video(video)
    try:
        if args.no_draw:
            return video_results(predictor, capture, video, args, None)
        with mp4_writer(Path(args.out) / f"{video.stem}.mp4", video_fps(capture)) as drawn:
            return video_results(predictor, capture, video, args, drawn)
    finally:
        capture.release()


def video_results(predictor, capture, video: Path, args: argparse.Namespace, drawn: Mp4Writer | None) -> list[dict]:
    """Detections of every frame of an open capture; frames with boxes drawn go to `drawn` when given."""
    from detection.utils.draw import draw_detections

    results, frame_id = [], 0
    for frame_id, frame in enumerate(video_frames(capture), 1):
        dets = predictor.predict([cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)], args.score_threshold,
                                 args.max_detections)[0]
        results += [{"image_id": frame_id, "file_name": f"{video.name}#{frame_id}", **d} for d in dets]
        if drawn is not None:
            drawn.write(draw_detections(frame, dets, enlarge=False))
    if frame_id == 0:
        raise UserError(f"{video}: no frames could be read")
    return results


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    source = Path(args.source)
    if not source.exists():
        raise UserError(f"source not found: {source}")
    if args.score_threshold is not None and not 0 <= args.score_threshold <= 1:
        raise UserError(f"--score-threshold must be in 0..1, got {args.score_threshold}")
    if args.batch_size < 1 or (args.max_detections is not None and args.max_detections < 1):
        raise UserError("--batch-size and --max-detections must be at least 1")
    from detection.predictor import Predictor
    from datasets.core.atomic import write_json

    predictor = Predictor.from_checkpoint(args.checkpoint, args.device)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    if source.is_file() and source.suffix.lower() in VIDEO_SUFFIXES:
        results = predict_video(predictor, source, args)
    else:
        files = list_images(source)
        check_not_inputs(files, source, Path(args.out), args.no_draw)
        results = predict_images(predictor, files, image_ids(files, source, args.annotations), source, args)
    write_json(Path(args.out) / "predictions.json", results)
    print(f"{len(results)} detections -> {Path(args.out) / 'predictions.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
