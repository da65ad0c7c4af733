"""The proposal cache: each image's proposals computed once, kept as root/<settings key>/<sha1 of its bytes>.npy.

Keyed by content, so a renamed or copied image hits the cache; `ensure` fills it in parallel processes.
"""
from __future__ import annotations

import dataclasses
import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Iterable

import numpy as np
from tqdm import tqdm

from datasets.core.atomic import atomic_open
from datasets.core.errors import UserError
from datasets.core.images import read_rgb
from detection.proposals.base import Proposer, ProposalConfig, build_proposer, file_sha1

_PROPOSERS: dict[str, Proposer] = {}  # per process: each settings key's proposer, built once


def compute(cfg: ProposalConfig, image_path: str | os.PathLike, target: str | os.PathLike) -> np.ndarray:
    """Proposals float32 [P, 4] xyxy of one image file, written atomically to `target` (.npy) and returned.

    Module-level, so worker processes can run it; UserError naming the image when it cannot be read.
    """
    proposer = _PROPOSERS.get(cfg.key())
    if proposer is None:
        proposer = _PROPOSERS[cfg.key()] = build_proposer(cfg)
    image = read_rgb(image_path)
    boxes = np.ascontiguousarray(proposer(image), np.float32).reshape(-1, 4)
    with atomic_open(target, "wb") as handle:
        np.save(handle, boxes, allow_pickle=False)
    return boxes


def store(cfg: ProposalConfig, image_path: str | os.PathLike, target: str | os.PathLike) -> int:
    """`compute` for a worker process: returns only how many proposals were written, not the boxes."""
    return len(compute(cfg, image_path, target))


def load(path: Path) -> np.ndarray | None:
    """A cached [P, 4] float32 array, or None when the file is missing or not one (it is then recomputed)."""
    try:
        boxes = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if boxes.dtype != np.float32 or boxes.ndim != 2 or boxes.shape[1] != 4:
        return None
    return boxes


def can_start_processes() -> bool:
    """False inside a daemonic process (a torch DataLoader worker), which may not start processes of its own."""
    return not multiprocessing.current_process().daemon


class ProposalCache:
    """Proposals of image files under `root/<cfg.key()>/`, all of them (ranked), whatever top_n a model uses.

    `computed` and `reused` count, over this object's life, images whose proposals were made or found.
    Safe from several processes at once (DataLoader workers): files are written to a temporary name and renamed.
    """

    def __init__(self, root: str | os.PathLike, cfg: ProposalConfig) -> None:
        self.cfg = dataclasses.replace(cfg)
        self.folder = Path(root) / cfg.key()
        self.computed = 0
        self.reused = 0
        self._digests: dict[tuple[str, int, int], str] = {}

    def path_for(self, image_path: str | os.PathLike) -> Path:
        """The cache file of an image file: <folder>/<sha1 of its bytes>.npy (hashed once per file version)."""
        if not os.path.isfile(image_path):
            raise UserError(f"{image_path}: image file not found")
        stat = os.stat(image_path)
        key = (os.path.abspath(image_path), stat.st_mtime_ns, stat.st_size)
        if key not in self._digests:
            self._digests[key] = file_sha1(image_path)
        return self.folder / f"{self._digests[key]}.npy"

    def get(self, image_path: str | os.PathLike) -> np.ndarray:
        """Proposals float32 [P, 4] xyxy of an image file, best first: from the cache, else computed and stored."""
        target = self.path_for(image_path)
        boxes = load(target)
        if boxes is not None:
            self.reused += 1
            return boxes
        self.computed += 1
        return compute(self.cfg, image_path, target)

    def ensure(self, paths: Iterable[str | os.PathLike], workers: int | None = None, progress: bool = True) -> int:
        """Compute the proposals of every image whose cache file is missing, in `workers` processes (default: one
        per CPU; in-process when 1, for a single image, or inside a DataLoader worker). Returns how many images
        were computed; files with equal bytes are computed once. The processes are spawned (not forked), so a
        script calling this needs the usual `if __name__ == "__main__":` guard."""
        missing: dict[Path, Path] = {}
        for path in paths:
            target = self.path_for(path)
            if target in missing or load(target) is not None:
                self.reused += 1
            else:
                missing[target] = Path(path)
        workers = min(workers or os.cpu_count() or 1, len(missing))
        with tqdm(total=len(missing), desc=f"proposals {self.cfg.method}", unit="img",
                  disable=None if progress else True) as bar:
            if workers > 1 and can_start_processes():
                self._in_processes(missing, workers, bar)
            else:
                for target, path in missing.items():
                    compute(self.cfg, path, target)
                    bar.update()
        self.computed += len(missing)
        return len(missing)

    def _in_processes(self, missing: dict[Path, Path], workers: int, bar: tqdm) -> None:
        """Run `store` for each (target, image) in a pool of fresh (spawned) processes; the first error stops
        the rest and is raised here (a UserError stays one)."""
        context = multiprocessing.get_context("spawn")  # forking a process with torch or OpenCV threads can hang
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            pending = {pool.submit(store, self.cfg, path, target) for target, path in missing.items()}
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    if future.exception() is not None:
                        for other in pending:
                            other.cancel()
                        raise future.exception()
                    bar.update()
