"""The SiamFC single-object tracker (TRACKERS entry `siamfc`): a scale pyramid of search crops, a cosine-window
penalty, a 16x bicubic upsampled response and a damped scale update around a trained SiamFCNet."""
from __future__ import annotations

import cv2
import numpy as np
import torch

from datasets.core.errors import UserError
from detection.registry import TRACKERS
from detection.tracking.base import TrackerFamily
from detection.tracking.crops import context_side, crop_square
from detection.tracking.siamfc_net import SiamFCNet, build_siamfc_net
from detection.tracking.siamfc_options import SiamFCOptions, TrackingOptions

MIN_SIDE, MAX_SIDE = 0.2, 5.0  # the search side stays within these factors of its first value


def check_box(box: np.ndarray, height: int, width: int) -> np.ndarray:
    """The start box [4] xyxy as float64; UserError when it is not 4 finite numbers with an area inside the frame."""
    box = np.asarray(box, dtype=np.float64).reshape(-1)
    if box.shape != (4,) or not np.isfinite(box).all():
        raise UserError(f"the start box must be 4 finite numbers, got {box.tolist()}")
    if box[2] <= box[0] or box[3] <= box[1]:
        raise UserError(f"the start box {box.tolist()} (x1, y1, x2, y2) has zero size")
    if box[0] < 0 or box[1] < 0 or box[2] > width or box[3] > height:
        raise UserError(f"the start box {box.tolist()} (x1, y1, x2, y2) is not inside the {width}x{height} frame")
    return box


class SiamFCTracker:
    """Follows one target with `net` (put in eval mode on `device`); a SingleObjectTracker.

    init(image, box): image RGB uint8 [H, W, 3], box [4] xyxy. update(image) -> (box [4] xyxy, score): score is the
    sigmoid of the chosen scale's best response, in 0..1.
    """

    def __init__(self, net: SiamFCNet, options: TrackingOptions | None = None, device: str | torch.device = "cpu"):
        self.options = options or TrackingOptions()
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()
        count = self.options.scales
        self.scale_factors = self.options.scale_step ** (np.arange(count) - (count - 1) / 2)
        size = net.response_size * self.options.upsample
        hann = np.hanning(size)
        self.window = np.outer(hann, hann) / np.outer(hann, hann).sum()
        self.kernel: torch.Tensor | None = None

    def tensor(self, crops: list[np.ndarray]) -> torch.Tensor:
        """RGB uint8 crops [S, S, 3] -> [N, 3, S, S] float in 0..1 on the device."""
        batch = torch.from_numpy(np.stack(crops)).to(self.device)
        return batch.permute(0, 3, 1, 2).float().div_(255)

    @torch.inference_mode()
    def init(self, image: np.ndarray, box: np.ndarray) -> None:
        box = check_box(box, *image.shape[:2])
        self.center = (box[:2] + box[2:]) / 2
        self.size = box[2:] - box[:2]  # w, h
        self.fill = image.reshape(-1, image.shape[-1]).mean(axis=0)
        exemplar_side = context_side(*self.size, self.options.context)
        self.search_side = exemplar_side * self.net.search_size / self.net.exemplar_size
        self.side_limits = (MIN_SIDE * self.search_side, MAX_SIDE * self.search_side)
        crop = crop_square(image, self.center, exemplar_side, self.net.exemplar_size, self.fill)
        self.kernel = self.net.embed(self.tensor([crop]))

    @torch.inference_mode()
    def responses(self, image: np.ndarray) -> np.ndarray:
        """Probabilities [S, U, U] of the target's place at each scale, upsampled (U = response size * upsample)."""
        sides = self.search_side * self.scale_factors
        crops = [crop_square(image, self.center, side, self.net.search_size, self.fill) for side in sides]
        logits = self.logits(crops)
        size = self.window.shape[0]
        upsampled = np.stack([cv2.resize(r, (size, size), interpolation=cv2.INTER_CUBIC) for r in logits])
        return 1 / (1 + np.exp(-upsampled))

    def logits(self, crops: list[np.ndarray]) -> np.ndarray:
        """Response logits [S, R, R] of the search crops (RGB uint8 [X, X, 3]) against the template. The one call
        of the network per frame: an exported search branch replaces it (detection.deploy.siamfc)."""
        return self.net.respond(self.kernel, self.net.embed(self.tensor(crops)))[:, 0].float().cpu().numpy()

    def update(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        if self.kernel is None:
            raise RuntimeError("SiamFCTracker.update before init")
        maps = self.responses(image)
        opts, middle = self.options, (len(self.scale_factors) - 1) // 2
        peaks = maps.reshape(len(maps), -1).max(axis=1)
        penalised = peaks * np.where(np.arange(len(maps)) == middle, 1.0, opts.scale_penalty)
        best = int(np.argmax(penalised))
        response = maps[best] - maps[best].min()
        response = (1 - opts.window_influence) * response / max(response.sum(), 1e-16) + opts.window_influence * self.window
        row, col = np.unravel_index(int(np.argmax(response)), response.shape)
        shift = (np.array([col, row]) - (response.shape[0] - 1) / 2) * self.net.stride / opts.upsample  # search px
        side = self.search_side * self.scale_factors[best]
        height, width = image.shape[:2]
        self.center = np.clip(self.center + shift * side / self.net.search_size, 0, [width, height])
        scale = (1 - opts.scale_lr) + opts.scale_lr * self.scale_factors[best]
        damped = float(np.clip(self.search_side * scale, *self.side_limits))
        self.size, self.search_side = self.size * damped / self.search_side, damped
        box = np.concatenate([self.center - self.size / 2, self.center + self.size / 2])
        return box, float(peaks[best])


def make_tracker(net: SiamFCNet, options: SiamFCOptions | TrackingOptions | None = None,
                 device: str | torch.device = "cpu") -> SiamFCTracker:
    """A SiamFCTracker on `net` with `options` (a SiamFCOptions' tracking group, or a TrackingOptions)."""
    tracking = options.tracking if isinstance(options, SiamFCOptions) else options
    return SiamFCTracker(net, tracking, device)


SIAMFC = TRACKERS.register("siamfc")(TrackerFamily(
    name="siamfc", options=SiamFCOptions, build_network=build_siamfc_net, make_tracker=make_tracker, task="siamfc"))
