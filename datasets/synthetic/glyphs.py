"""Synthetic glyphs dataset: the digits 0..9 in OpenCV's Hershey fonts on cluttered backgrounds, as COCO with masks.

Harder than the shapes: small rotated strokes, unannotated lines, blobs and non-digit characters. Deterministic by seed.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np

from datasets.core.coco import mask_to_annotation
from datasets.core.errors import UserError
from datasets.synthetic.writer import read_options, write_set

CATEGORY_NAMES = tuple(str(digit) for digit in range(10))
# each with and without cv2.FONT_ITALIC (OpenCV slants PLAIN, COMPLEX, TRIPLEX and COMPLEX_SMALL by it; the
# script fonts lean anyway, SIMPLEX and DUPLEX stay upright)
FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_PLAIN, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX,
         cv2.FONT_HERSHEY_TRIPLEX, cv2.FONT_HERSHEY_COMPLEX_SMALL, cv2.FONT_HERSHEY_SCRIPT_SIMPLEX,
         cv2.FONT_HERSHEY_SCRIPT_COMPLEX)
# unannotated characters with strokes like a digit's; those a digit could pass for are left out
# (O o for 0, l I i | ! j for 1, Z z for 2, S s $ for 5, b G e for 6, B for 8, g q for 9, T for 7)
DISTRACTORS = "aAcCdDEfFhHkKmMnNpPQRrtuUvVwWxXyY#%&@?+*"
SCRIPT_LOOKALIKES = "Qfr"  # in the script fonts Q is drawn like a 2, f like an l, r like a small 2
MAX_IOU = 0.3  # two glyphs' boxes overlap at most this much (their strokes never touch)
ATTEMPTS = 30  # random places tried per glyph before it is left out
MIN_CONTRAST = 50.0  # grey levels of brightness (and half the colour distance) a glyph keeps from its surroundings
FAINT, SOLID = 38, 128  # anti-aliased coverage (of 255) up to FAINT tints nothing, from SOLID on is opaque


@dataclass
class GlyphOptions:
    """How the glyphs look; the defaults are the benchmark set (320 px, 2..12 digits of 12..64 px)."""

    image_size: int = 320
    min_size: int = 12  # glyph height in pixels before rotation (ink, not the font's line height)
    max_size: int = 64
    min_objects: int = 2
    max_objects: int = 12
    max_angle: float = 30.0  # rotation within +-max_angle degrees
    max_distractors: int = 6  # unannotated non-digit characters per image: 0..N
    clutter: float = 1.0  # scales how many lines, circles, rectangles and blobs are drawn (0: none)
    degrade: float = 0.3  # chance of each of mild blur, sensor noise and JPEG re-encoding per image
    image_format: str = "png"

    def check(self) -> None:
        """UserError naming the option that is out of range."""
        if self.image_size < 64:
            raise UserError(f"--image-size must be at least 64, got {self.image_size}")
        if not 8 <= self.min_size <= self.max_size <= self.image_size // 2:
            raise UserError(f"need 8 <= --min-size ({self.min_size}) <= --max-size ({self.max_size})"
                            f" <= half of --image-size ({self.image_size // 2})")
        if not 0 <= self.min_objects <= self.max_objects or self.max_objects < 1:
            raise UserError(f"need 0 <= --min-objects ({self.min_objects}) <= --max-objects "
                            f"({self.max_objects}) and --max-objects >= 1")
        if not 0 <= self.max_angle <= 60:
            raise UserError(f"--max-angle must be in [0, 60] (beyond, a 6 and a 9 look alike), got {self.max_angle}")
        if self.max_distractors < 0 or self.clutter < 0:
            raise UserError(f"--max-distractors and --clutter must be >= 0, got {self.max_distractors} "
                            f"and {self.clutter}")
        if not 0.0 <= self.degrade <= 1.0:
            raise UserError(f"--degrade must be in [0, 1], got {self.degrade}")
        if self.image_format not in ("png", "jpg"):
            raise UserError(f"--format must be png or jpg, got {self.image_format}")


@dataclass
class Glyph:
    """One pasted character: opacity crop [h, w] float32 in 0..1 at top-left (x, y); label 0..9, None if a distractor.

    Its mask is every pixel of nonzero opacity, so its box holds every pixel the glyph tints.
    """

    alpha: np.ndarray
    x: int
    y: int
    label: int | None

    @cached_property
    def mask(self) -> np.ndarray:
        """bool [h, w]: the crop's pixels the glyph tints."""
        return self.alpha > 0

    @cached_property
    def ink(self) -> np.ndarray:
        """[x1, y1, x2, y2] (exclusive ends) of the mask's pixels in the crop."""
        ys, xs = np.nonzero(self.mask)
        return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])

    def box(self) -> np.ndarray:
        """[x1, y1, x2, y2] (exclusive ends) of the mask's pixels in the image."""
        return self.ink + np.array([self.x, self.y, self.x, self.y])

    def full_mask(self, size: int) -> np.ndarray:
        """bool [size, size] mask in image coordinates."""
        full = np.zeros((size, size), bool)
        h, w = self.alpha.shape
        full[self.y : self.y + h, self.x : self.x + w] = self.mask
        return full


def make_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A random-coloured gradient, smooth multi-scale noise texture, or both: uint8 [size, size, 3]."""
    base = rng.uniform(20, 235, 3).astype(np.float32)
    image = np.broadcast_to(base, (size, size, 3))
    kind = int(rng.integers(3))  # 0 gradient, 1 texture, 2 both
    if kind != 1:
        other = rng.uniform(0, 255, 3).astype(np.float32)
        angle = rng.uniform(0, 2 * np.pi)
        ramp = np.linspace(0, 1, size, dtype=np.float32)
        t = np.float32(np.cos(angle)) * ramp[None, :] + np.float32(np.sin(angle)) * ramp[:, None]
        t = ((t - t.min()) / max(float(t.max() - t.min()), 1e-6))[..., None]
        image = image + (other - base) * t
    if kind != 0:
        for cells, amplitude in ((4, 50.0), (16, 25.0), (64, 12.0)):
            coarse = rng.uniform(-amplitude, amplitude, (cells, cells, 3)).astype(np.float32)
            image = image + cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    grain = rng.standard_normal((size, size, 1), dtype=np.float32) * np.float32(rng.uniform(1, 8))
    return np.clip(np.round(image + grain), 0, 255).astype(np.uint8)


def random_color(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(0, 256, 3))


def draw_shapes(rng: np.random.Generator, image: np.ndarray, amount: float) -> None:
    """Unannotated lines, circles and rectangles of random colours and strokes, drawn in place."""
    size = image.shape[0]
    for _ in range(int(rng.poisson(6 * amount))):
        p, q = (tuple(int(v) for v in rng.integers(0, size, 2)) for _ in range(2))
        cv2.line(image, p, q, random_color(rng), int(rng.integers(1, 5)), cv2.LINE_AA)
    for _ in range(int(rng.poisson(3 * amount))):
        center = tuple(int(v) for v in rng.integers(0, size, 2))
        radius = int(rng.integers(4, max(size // 6, 5)))
        thickness = -1 if rng.random() < 0.3 else int(rng.integers(1, 4))
        cv2.circle(image, center, radius, random_color(rng), thickness, cv2.LINE_AA)
    for _ in range(int(rng.poisson(2 * amount))):
        x, y = (int(v) for v in rng.integers(0, size, 2))
        w = int(rng.integers(10, max(size // 4, 11)))
        h = int(np.clip(w * np.exp(rng.uniform(-0.7, 0.7)), 10, None))  # no narrow frames that pass for a 0
        thickness = -1 if rng.random() < 0.3 else int(rng.integers(1, 4))
        cv2.rectangle(image, (x, y), (x + w, y + h), random_color(rng), thickness, cv2.LINE_AA)


def draw_blobs(rng: np.random.Generator, image: np.ndarray, amount: float) -> None:
    """Soft blurred ellipses of random colours blended in place (drawn at a quarter size, then upscaled)."""
    count = int(rng.poisson(3 * amount))
    if count == 0:
        return
    size = image.shape[0]
    small = max(size // 4, 8)
    color = np.zeros((small, small, 3), np.float32)
    alpha = np.zeros((small, small), np.float32)
    for _ in range(count):
        center = tuple(int(v) for v in rng.integers(0, small, 2))
        axes = tuple(int(v) for v in rng.integers(2, max(small // 6, 3), 2))
        angle = float(rng.uniform(0, 180))
        cv2.ellipse(color, center, axes, angle, 0, 360, random_color(rng), -1)
        cv2.ellipse(alpha, center, axes, angle, 0, 360, float(rng.uniform(0.4, 0.9)), -1)
    sigma = float(rng.uniform(1.0, 2.5))
    color, alpha = (cv2.resize(cv2.GaussianBlur(layer, (0, 0), sigma), (size, size)) for layer in (color, alpha))
    blended = image * (1 - alpha[..., None]) + color * alpha[..., None]
    image[:] = np.clip(np.round(blended), 0, 255).astype(np.uint8)


def make_backdrop(rng: np.random.Generator, options: GlyphOptions) -> np.ndarray:
    """Background plus unannotated clutter, uint8 BGR [size, size, 3]."""
    image = make_background(rng, options.image_size)
    draw_blobs(rng, image, options.clutter)
    draw_shapes(rng, image, options.clutter)
    return image


def ink_crop(alpha: np.ndarray) -> np.ndarray:
    """The part of an opacity image that holds ink (any nonzero pixel); empty if none does."""
    ys, xs = np.nonzero(alpha)
    if ys.size == 0:
        return alpha[:0, :0]
    return alpha[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def draw_text(text: str, font: int, scale: float, thickness: int) -> np.ndarray:
    """Upright anti-aliased text on its own canvas, cropped to its ink: uint8 [h, w] opacity 0..255."""
    (w, h), baseline = cv2.getTextSize(text, font, scale, thickness)
    pad = thickness + h // 2 + 4  # italic and script strokes reach past getTextSize's box
    canvas = np.zeros((h + baseline + 2 * pad, w + 2 * pad), np.uint8)
    cv2.putText(canvas, text, (pad, pad + h), font, scale, 255, thickness, cv2.LINE_AA)
    return ink_crop(canvas)


def ink_height(coverage: np.ndarray) -> int:
    """Rows of uint8 coverage that tint something (above FAINT)."""
    rows = np.nonzero((coverage > FAINT).any(axis=1))[0]
    return int(rows[-1] - rows[0] + 1) if rows.size else 0


def glyph_alpha(text: str, font: int, height: float, thickness: int, angle: float) -> np.ndarray:
    """One character about `height` pixels tall (ink, upright), rotated by `angle` degrees (counter-clockwise).

    Rendered anti-aliased on its own canvas and rotated; answers the opacity float32 [h, w] in 0..1, cropped
    to its nonzero pixels: coverage rescaled so that faint fringes (up to FAINT) are cut and SOLID is opaque.
    """
    base = cv2.getTextSize(text, font, 1.0, 1)[0][1]
    scale = height / max(base, 1)
    upright = draw_text(text, font, scale, thickness)
    for _ in range(2):  # the font's line height is not the ink's, and the stroke adds to it
        measured = ink_height(upright)
        if abs(measured - height) <= 1 or measured <= thickness:
            break
        scale *= max(height - thickness, 1.0) / (measured - thickness)
        upright = draw_text(text, font, scale, thickness)
    h, w = upright.shape
    side = int(np.ceil(np.hypot(h, w))) + 4
    square = np.zeros((side, side), np.uint8)
    top, left = (side - h) // 2, (side - w) // 2
    square[top : top + h, left : left + w] = upright
    turn = cv2.getRotationMatrix2D(((side - 1) / 2, (side - 1) / 2), angle, 1.0)
    rotated = cv2.warpAffine(square, turn, (side, side), flags=cv2.INTER_LINEAR)
    opacity = np.clip((rotated.astype(np.float32) - FAINT) / (SOLID - FAINT), 0.0, 1.0)
    return ink_crop(opacity)


def random_alpha(rng: np.random.Generator, label: int | None, options: GlyphOptions) -> np.ndarray:
    """A digit (or, for label None, a distractor character) in a random Hershey font, italic or not, of
    log-uniform height, random stroke and random angle."""
    font = FONTS[int(rng.integers(len(FONTS)))]
    italic = cv2.FONT_ITALIC if rng.random() < 0.5 else 0
    if label is None:
        script = font in (cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, cv2.FONT_HERSHEY_SCRIPT_COMPLEX)
        choices = [c for c in DISTRACTORS if not (script and c in SCRIPT_LOOKALIKES)]
        text = choices[int(rng.integers(len(choices)))]
    else:
        text = str(label)
    height = float(np.exp(rng.uniform(np.log(options.min_size), np.log(options.max_size))))
    thickness = int(np.clip(round(height * rng.uniform(0.03, 0.12)), 1, max(1, int(height) // 9)))  # holes stay open
    angle = float(rng.uniform(-options.max_angle, options.max_angle))
    return glyph_alpha(text, font | italic, height, thickness, angle)


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one [x1, y1, x2, y2] box with each of boxes [N, 4]."""
    if len(boxes) == 0:
        return np.zeros(0)
    wh = np.clip(np.minimum(box[2:], boxes[:, 2:]) - np.maximum(box[:2], boxes[:, :2]), 0, None)
    inter = wh[:, 0] * wh[:, 1]
    areas = (boxes[:, 2:] - boxes[:, :2]).prod(axis=1)
    return inter / ((box[2:] - box[:2]).prod() + areas - inter)


def place(rng: np.random.Generator, alpha: np.ndarray, label: int | None, taken: np.ndarray,
          boxes: np.ndarray) -> Glyph | None:
    """A place inside the image where the glyph touches no other's strokes and its box overlaps none of `boxes`
    [N, 4] much (IoU under MAX_IOU); None if no place is found."""
    size = taken.shape[0]
    h, w = alpha.shape
    glyph = Glyph(alpha, 0, 0, label)
    if h > size or w > size or not glyph.mask.any():
        return None
    for _ in range(ATTEMPTS):
        glyph.x, glyph.y = int(rng.integers(0, size - w + 1)), int(rng.integers(0, size - h + 1))
        if (taken[glyph.y : glyph.y + h, glyph.x : glyph.x + w] & glyph.mask).any():
            continue
        if (box_iou(glyph.box(), boxes) < MAX_IOU).all():
            return glyph
    return None


def pick_color(rng: np.random.Generator, image: np.ndarray, glyph: Glyph) -> np.ndarray:
    """A random colour that stands out, in colour and in brightness, from nearly every pixel around the glyph
    (a clutter line of the glyph's colour would join its strokes); the most contrasting of 32 if none does."""
    x1, y1, x2, y2 = glyph.box()
    local = image[max(y1 - 2, 0) : y2 + 2, max(x1 - 2, 0) : x2 + 2].reshape(-1, 3).astype(np.float32)
    local = local[:: max(len(local) // 256, 1)]
    colors = rng.uniform(0, 255, (32, 3)).astype(np.float32)
    difference = colors[:, None, :] - local[None, :, :]  # [32, n, 3]
    distance = np.linalg.norm(difference, axis=-1) / 2
    brightness = np.abs(difference @ np.array([0.114, 0.587, 0.299], np.float32))  # BGR luma
    quantile = max(len(local) // 20, 1)  # the 5% of local pixels closest to the colour
    scores = np.partition(np.minimum(distance, brightness), quantile - 1, axis=1)[:, quantile - 1]
    good = np.nonzero(scores >= MIN_CONTRAST)[0]
    return colors[good[0] if good.size else int(np.argmax(scores))]


def paste(image: np.ndarray, glyph: Glyph, color: np.ndarray) -> None:
    """Blend the glyph's colour into the image in place by its opacity."""
    h, w = glyph.alpha.shape
    region = image[glyph.y : glyph.y + h, glyph.x : glyph.x + w].astype(np.float32)
    alpha = glyph.alpha[..., None]
    blended = region * (1 - alpha) + color.astype(np.float32) * alpha
    image[glyph.y : glyph.y + h, glyph.x : glyph.x + w] = np.clip(np.round(blended), 0, 255).astype(np.uint8)


def place_glyphs(rng: np.random.Generator, image: np.ndarray, options: GlyphOptions) -> list[Glyph]:
    """Paste the digits, then the distractors, in place; answers every glyph placed (distractors' label None)."""
    count = int(rng.integers(options.min_objects, options.max_objects + 1))
    labels: list[int | None] = [int(v) for v in rng.integers(0, 10, count)]
    labels += [None] * int(rng.integers(0, options.max_distractors + 1))
    taken = np.zeros(image.shape[:2], bool)
    glyphs: list[Glyph] = []
    for label in labels:
        boxes = np.array([g.box() for g in glyphs]).reshape(-1, 4)
        glyph = place(rng, random_alpha(rng, label, options), label, taken, boxes)
        if glyph is None:
            continue
        paste(image, glyph, pick_color(rng, image, glyph))
        taken |= cv2.dilate(glyph.full_mask(image.shape[0]).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        glyphs.append(glyph)
    return glyphs


def degrade(rng: np.random.Generator, image: np.ndarray, chance: float) -> np.ndarray:
    """Maybe a mild blur, maybe sensor noise, maybe a JPEG round trip (each with probability `chance`)."""
    draws = rng.random(3)
    sigma, noise, quality = rng.uniform(0.4, 0.9), rng.uniform(1.0, 4.0), int(rng.integers(40, 80))
    if draws[0] < chance:
        image = cv2.GaussianBlur(image, (0, 0), sigma)
    if draws[1] < chance:
        noisy = image + rng.standard_normal(image.shape, dtype=np.float32) * np.float32(noise)
        image = np.clip(np.round(noisy), 0, 255).astype(np.uint8)
    if draws[2] < chance:
        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        image = cv2.imdecode(data, cv2.IMREAD_COLOR) if ok else image
    return image


def render_image(rng: np.random.Generator, options: GlyphOptions) -> tuple[np.ndarray, list[Glyph]]:
    """One image (uint8 BGR) and the digits on it (distractors left out)."""
    image = make_backdrop(rng, options)
    glyphs = place_glyphs(rng, image, options)
    return degrade(rng, image, options.degrade), [g for g in glyphs if g.label is not None]


def make_glyphs(out_dir: str | os.PathLike, num_images: int, seed: int, **opts) -> Path:
    """Render `num_images` images into out_dir/images and write out_dir/annotations.json.

    Keyword options are the fields of GlyphOptions. Returns the annotations path.
    """
    options = read_options(GlyphOptions, opts, "glyphs")
    return write_set(out_dir, num_images, seed, options, glyph_objects, "glyphs", "synthetic glyphs", CATEGORY_NAMES)


def glyph_objects(rng: np.random.Generator, options: GlyphOptions) -> tuple[np.ndarray, list[dict]]:
    """One image and its digits' annotation fields."""
    image, glyphs = render_image(rng, options)
    return image, [{"category_id": glyph.label + 1, "iscrowd": 0,
                    **mask_to_annotation(glyph.full_mask(options.image_size))} for glyph in glyphs]


def run(args) -> None:
    """CLI: python -m datasets glyphs."""
    path = make_glyphs(
        args.out, args.num_images, args.seed, image_size=args.image_size, min_size=args.min_size,
        max_size=args.max_size, min_objects=args.min_objects, max_objects=args.max_objects,
        max_angle=args.max_angle, max_distractors=args.max_distractors, clutter=args.clutter,
        degrade=args.degrade, image_format=args.format,
    )
    print(f"wrote {args.num_images} images and {path}")
