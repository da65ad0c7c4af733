"""Prediction over files, the predict command's work: every image of a file or folder, or every frame of a video,
through a Predictor, whole or sliced; COCO results carrying file_name, and drawn copies (written only once every image
succeeded)."""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

import cv2
import numpy as np

from datasets.core.errors import UserError
from datasets.core.images import read_rgb, write_image
from datasets.core.video import Mp4Writer, mp4_writer, open_video, video_fps, video_frames
from detection.inference import slicing
from detection.inference.slice_options import SliceOptions
from detection.inference.sources import image_files, is_video
from detection.viz.detections import draw_detections

if TYPE_CHECKING:
    from detection.inference.predictor import Predictor


@dataclass(frozen=True)
class PredictRun:
    """Where and how: the output folder, the call's post-processing (None: the checkpoint's), the batch size,
    whether drawn copies are written (OUT/<relative name> for images, OUT/<stem>.mp4 for a video), and the slicing
    of every image and frame (None: whole)."""

    out: Path
    score_threshold: float | None = None
    max_detections: int | None = None
    batch_size: int = 8
    draw: bool = True
    slicing: SliceOptions | None = None

    def detect(self, predictor: Predictor, images: list[np.ndarray]) -> list[list[dict]]:
        """Detections per RGB image, whole or sliced, at this run's post-processing."""
        return slicing.predict_images(predictor, images, self.slicing, self.score_threshold, self.max_detections)


def predict_source(predictor: Predictor, source: Path, run: PredictRun, annotations: str | None = None) -> list[dict]:
    """COCO results {image_id, file_name, bbox, score, category_id, category} of an image, a folder of images or a
    video (image_id: the frame number from 1; for images, the --annotations id matched by file name, else 1..N)."""
    if not source.exists():
        raise UserError(f"source not found: {source}")
    run.out.mkdir(parents=True, exist_ok=True)
    if is_video(source):
        return predict_video(predictor, source, run)
    files = image_files(source)
    check_not_inputs(files, source, run)
    return predict_images(predictor, files, image_ids(files, source, annotations), source, run)


def relative_name(file: Path, source: Path) -> str:
    """The image's name as results and drawn copies carry it: its path below a source folder."""
    return file.relative_to(source).as_posix() if source.is_dir() else file.name


def check_not_inputs(files: list[Path], source: Path, run: PredictRun) -> None:
    """UserError when a drawn copy would overwrite one of the input images (the output is the source folder)."""
    inputs = {f.resolve() for f in files}
    drawn = [(run.out / relative_name(f, source)).resolve() for f in files] if run.draw else []
    clash = next((d for d in drawn if d in inputs), None)
    if clash is not None:
        raise UserError(f"--out {run.out}: a drawn copy would overwrite the input {clash}; pick another folder")


def image_ids(files: list[Path], source: Path, annotations: str | None) -> list[int]:
    """Ids from a COCO file (matched by file_name, else by base name), else 1..N in file order."""
    if not annotations:
        return list(range(1, len(files) + 1))
    from detection.data.coco import load_coco

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


def predict_images(predictor: Predictor, files: list[Path], ids: list[int], source: Path,
                   run: PredictRun) -> list[dict]:
    """Results for every image, in batches; drawn copies (same name and format as the image) appear only if every
    image succeeds."""
    results = []
    staging = Path(tempfile.mkdtemp(prefix=".predict-", dir=run.out))
    try:
        for start in range(0, len(files), run.batch_size):
            chunk = files[start:start + run.batch_size]
            images = [read_rgb(f) for f in chunk]
            answers = run.detect(predictor, images)
            for file, image_id, image, dets in zip(chunk, ids[start:], images, answers):
                name = relative_name(file, source)
                results += [{"image_id": image_id, "file_name": name, **d} for d in dets]
                if run.draw:
                    write_image(staging / name, draw_detections(cv2.cvtColor(image, cv2.COLOR_RGB2BGR), dets))
        for drawn in sorted(p for p in staging.rglob("*") if p.is_file()):
            target = run.out / drawn.relative_to(staging)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(drawn, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return results


def predict_video(predictor: Predictor, video: Path, run: PredictRun) -> list[dict]:
    """Every frame through the model; results carry image_id = frame number (from 1); with `run.draw`, the frames
    with their boxes go to OUT/<stem>.mp4."""
    capture = open_video(video)
    try:
        if not run.draw:
            return video_results(predictor, video_frames(capture), video, run, None)
        with mp4_writer(run.out / f"{video.stem}.mp4", video_fps(capture)) as drawn:
            return video_results(predictor, video_frames(capture), video, run, drawn)
    finally:
        capture.release()


def video_results(predictor: Predictor, frames: Iterable[np.ndarray], video: Path, run: PredictRun,
                  drawn: Mp4Writer | None) -> list[dict]:
    """Detections of every frame (BGR); frames with boxes drawn go to `drawn` when given."""
    results, frame_id = [], 0
    for frame_id, frame in enumerate(frames, 1):
        dets = run.detect(predictor, [cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)])[0]
        results += [{"image_id": frame_id, "file_name": f"{video.name}#{frame_id}", **d} for d in dets]
        if drawn is not None:
            drawn.write(draw_detections(frame, dets, enlarge=False))
    if frame_id == 0:
        raise UserError(f"{video}: no frames could be read")
    return results
