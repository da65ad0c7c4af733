"""`sequences`: synthetic tracking videos from a COCO dataset's objects, with OTB and MOTChallenge ground truth.

Objects (cut out by mask, else by box) move smoothly, change scale, pass over each other; det/ has noisy detections.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from datasets.core.atomic import write_json
from datasets.core.errors import UserError
from datasets.core.video import mp4_writer
from datasets.synthetic.compose import place, render_frame
from datasets.synthetic.motion import Motion, crossing_pair, random_motion
from datasets.synthetic.public_detections import DetectionNoise, detection_lines, frame_detections
from datasets.synthetic.shapes import make_background
from datasets.synthetic.sprites import Sprite, SpriteSource, dataset_background, load_sprites

NOISE_STD = 2.0  # per-frame sensor noise, grey levels


@dataclass
class SequenceOptions:
    """What every sequence looks like; object 1 is the target, object 2 a distractor of its class."""

    frames: int = 60
    objects: int = 4
    size: int = 256
    mode: str = "crossing"  # crossing: objects 1 and 2 cross at the middle frame | random
    background: str = "dataset"  # dataset: an image of the set, objects painted out | texture
    fps: float = 25.0
    image_format: str = "jpg"
    detections: DetectionNoise = dataclasses.field(default_factory=DetectionNoise)  # for det/det.txt

    def check(self) -> None:
        """UserError naming the option that is out of range."""
        self.detections.check()
        if self.frames < 2:
            raise UserError(f"--frames must be at least 2, got {self.frames}")
        if self.objects < 2:
            raise UserError(f"--objects must be at least 2 (a target and a distractor), got {self.objects}")
        if self.size < 64:
            raise UserError(f"--size must be at least 64, got {self.size}")
        if self.mode not in ("crossing", "random"):
            raise UserError(f"--mode must be crossing or random, got {self.mode}")
        if self.background not in ("dataset", "texture"):
            raise UserError(f"--background must be dataset or texture, got {self.background}")
        if not self.fps > 0:
            raise UserError(f"--fps must be positive, got {self.fps}")
        if self.image_format not in ("jpg", "png"):
            raise UserError(f"--format must be jpg or png, got {self.image_format}")


@dataclass
class Scene:
    """One sequence's plan: sprites and motions by object (id = index + 1), depth order back to front."""

    sprites: list[Sprite]
    motions: list[Motion]
    order: list[int]
    background: np.ndarray


def pick_sprites(rng: np.random.Generator, sprites: list[Sprite], count: int) -> list[Sprite]:
    """A random target, then another sprite of its category (itself when it has no twin), then any."""
    target = sprites[int(rng.integers(len(sprites)))]
    twins = [s for s in sprites if s.category_id == target.category_id and s is not target]
    distractor = twins[int(rng.integers(len(twins)))] if twins else target
    return [target, distractor] + [sprites[int(i)] for i in rng.integers(len(sprites), size=count - 2)]


def plan_scene(rng: np.random.Generator, source: SpriteSource, options: SequenceOptions) -> Scene:
    """Choose sprites, sizes, paths, depth order and background for one sequence."""
    size, frames = options.size, options.frames
    sprites = pick_sprites(rng, source.sprites, options.objects)
    bases = rng.uniform(0.12, 0.22, options.objects) * size
    speed = size / 128
    motions = [random_motion(rng, size, frames, base, speed) for base in bases]
    if options.mode == "crossing":
        motions[0], motions[1] = crossing_pair(rng, size, frames, (bases[0], bases[1]), speed)
    if options.background == "dataset":
        background = dataset_background(source, rng, size)
    else:
        background = np.round(make_background(rng, size)).astype(np.uint8)
    return Scene(sprites, motions, [int(i) for i in rng.permutation(options.objects)], background)


def gt_lines(frame: int, boxes: np.ndarray, visibility: np.ndarray, scene: Scene) -> list[str]:
    """MOTChallenge ground-truth lines of one frame: frame,id,x,y,w,h,1,class,visibility (by id)."""
    lines = []
    for index in range(len(scene.sprites)):
        x, y, w, h = (int(v) for v in boxes[index])
        category = scene.sprites[index].category_id
        lines.append(f"{frame},{index + 1},{x},{y},{w},{h},1,{category},{visibility[index]:.3f}")
    return lines


def render_scene(rng: np.random.Generator, scene: Scene, frames: int):
    """Yield (frame BGR uint8, boxes [N, 4] xywh by id, visibility [N] by id) for every frame."""
    for t in range(frames):
        layers = [place(scene.sprites[i], scene.motions[i].centers[t], scene.motions[i].extents[t])
                  for i in scene.order]
        image, boxes, visibility = render_frame(scene.background, layers)
        noisy = image.astype(np.float32) + rng.normal(0, NOISE_STD, image.shape).astype(np.float32)
        by_id = np.argsort(scene.order)
        yield np.clip(np.round(noisy), 0, 255).astype(np.uint8), boxes[by_id], visibility[by_id]


def seqinfo(name: str, options: SequenceOptions) -> str:
    """The MOTChallenge seqinfo.ini of a sequence."""
    return (f"[Sequence]\nname={name}\nimDir=frames\nframeRate={options.fps:g}\nseqLength={options.frames}\n"
            f"imWidth={options.size}\nimHeight={options.size}\nimExt=.{options.image_format}\n")


def write_sequence(folder: Path, name: str, rngs: tuple, scene: Scene, options: SequenceOptions) -> None:
    """Frames, <name>.mp4, groundtruth_rect.txt (object 1), gt/gt.txt, det/det.txt and seqinfo.ini.

    rngs: (frame noise, public detections), apart so the detections' settings never change the frames.
    """
    for sub in ("frames", "gt", "det"):
        (folder / sub).mkdir(parents=True)
    gt, det, target = [], [], []
    with mp4_writer(folder / f"{name}.mp4", options.fps) as video:
        for frame, (image, boxes, visibility) in enumerate(render_scene(rngs[0], scene, options.frames), 1):
            ok, data = cv2.imencode(f".{options.image_format}", image)
            if not ok:
                raise UserError(f"OpenCV cannot encode .{options.image_format} frames")
            (folder / "frames" / f"{frame:06d}.{options.image_format}").write_bytes(data.tobytes())
            video.write(image)
            gt += gt_lines(frame, boxes, visibility, scene)
            det += detection_lines(frame, *frame_detections(rngs[1], boxes, visibility, options.size,
                                                            options.detections))
            target.append(",".join(str(int(v)) for v in boxes[0]))
    for path, lines in ((folder / "gt" / "gt.txt", gt), (folder / "det" / "det.txt", det),
                        (folder / "groundtruth_rect.txt", target)):
        path.write_text("".join(f"{line}\n" for line in lines))
    (folder / "seqinfo.ini").write_text(seqinfo(name, options))


def replace_folder(staging: Path, final: Path) -> None:
    """Put a finished staging folder at `final`, replacing an older one of the same name."""
    if final.exists():
        shutil.rmtree(final)
    os.replace(staging, final)


def make_sequence(out: Path, index: int, seed: int, source: SpriteSource, options: SequenceOptions) -> dict:
    """Render sequence `index` (seq-0001 for 0) into OUT/seq-NNNN, staged then renamed; its summary."""
    name = f"seq-{index + 1:04d}"
    rng = np.random.default_rng([seed, index])
    scene = plan_scene(rng, source, options)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=out))
    try:
        write_sequence(staging, name, (rng, np.random.default_rng([seed, index, 1])), scene, options)
        replace_folder(staging, out / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    objects = [{"id": i + 1, "category_id": s.category_id, "depth": scene.order.index(i)}
               for i, s in enumerate(scene.sprites)]
    return {"name": name, "frames": options.frames, "target_id": 1, "objects": objects}


def make_sequences(annotations: str | os.PathLike, images: str | os.PathLike, out: str | os.PathLike,
                   num_sequences: int, seed: int = 0, **opts) -> list[Path]:
    """Write `num_sequences` sequences and OUT/sequences.json; keyword options are SequenceOptions fields."""
    try:
        options = SequenceOptions(**opts)
        if isinstance(options.detections, dict):
            options.detections = DetectionNoise(**options.detections)
    except TypeError as exc:
        raise UserError(f"unknown sequences option: {exc}")
    options.check()
    if num_sequences < 1:
        raise UserError(f"--num-sequences must be at least 1, got {num_sequences}")
    source = load_sprites(annotations, images, np.random.default_rng(seed))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summaries = [make_sequence(out, index, seed, source, options)
                 for index in tqdm(range(num_sequences), desc="sequences", disable=None)]
    write_json(out / "sequences.json", {"categories": source.categories, "sequences": summaries, "seed": seed,
                                        "source": str(annotations), "options": dataclasses.asdict(options)},
               indent=1)
    return [out / s["name"] for s in summaries]


def run(args) -> None:
    """CLI: python -m datasets sequences."""
    folders = make_sequences(args.annotations, args.images, args.out, args.num_sequences, args.seed,
                             frames=args.frames, objects=args.objects, size=args.size, mode=args.mode,
                             background=args.background, fps=args.fps, image_format=args.format,
                             detections=DetectionNoise(args.det_jitter, args.det_drop, args.det_false_alarms))
    print(f"wrote {len(folders)} sequences of {args.frames} frames to {args.out}")
