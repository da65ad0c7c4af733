"""Decoded-image caches for the COCO dataset (data.cache_images, as Ultralytics' cache=ram|disk): each read gives
the very RGB uint8 array a decode of the file gives, only without decoding it again.

ram: every image decoded once, up front (threads), held in the process; loader workers started by fork (Linux's
default) share those pages, workers started by spawn get a copy each. disk: one .npy file per image under a folder,
keyed by the file's path, size and mtime (a changed or renamed file is decoded anew), written atomically so several
workers may fill it at once, read back memory-mapped.
"""
from __future__ import annotations

import hashlib
import os
import secrets
from multiprocessing.pool import ThreadPool
from pathlib import Path

import numpy as np
from tqdm import tqdm

from datasets.core.errors import UserError
from datasets.core.images import image_size, read_rgb

CACHE_KINDS = ("", "ram", "disk")
RAM_FRACTION = 0.5  # data.cache_images=ram refuses to take more than this share of the available memory


def available_memory() -> int:
    """Bytes of memory available to a new allocation (MemAvailable; free pages where /proc is missing)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


class NoCache:
    """Decode the file at every read (data.cache_images: "")."""

    def read(self, path: Path) -> np.ndarray:
        return read_rgb(path)


class RamCache:
    """Every image of `paths` decoded once, up front; reads are read-only views of the held arrays."""

    def __init__(self, paths: list[Path], progress: bool = True) -> None:
        need = sum(width * height * 3 for width, height in (image_size(p) for p in paths))
        free = available_memory()
        if need > RAM_FRACTION * free:
            raise UserError(f"data.cache_images=ram: {len(paths)} images need about {need / 2**20:.0f} MB, more "
                            f"than {RAM_FRACTION:.0%} of the {free / 2**20:.0f} MB of memory available; use "
                            "data.cache_images=disk, or leave it empty")
        with ThreadPool(min(8, os.cpu_count() or 1)) as pool:
            decoded = tqdm(pool.imap(read_rgb, paths), total=len(paths), desc="caching images (ram)",
                           disable=None if progress else True, leave=False)
            self.images = {str(path): image for path, image in zip(paths, decoded)}
        for image in self.images.values():
            image.flags.writeable = False
        self.nbytes = sum(image.nbytes for image in self.images.values())

    def read(self, path: Path) -> np.ndarray:
        image = self.images.get(str(path))
        return image if image is not None else read_rgb(path)


class DiskCache:
    """Decoded images as .npy files in `folder`, made at the first read of each image and reused after."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def entry(self, path: Path) -> Path:
        """The cache file of an image: named by its resolved path, size and modification time."""
        try:
            stat = path.stat()
        except FileNotFoundError:
            raise UserError(f"{path}: image file not found") from None
        key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
        return self.folder / f"{hashlib.sha1(key.encode()).hexdigest()}.npy"

    def read(self, path: Path) -> np.ndarray:
        entry = self.entry(path)
        try:
            image = np.load(entry, mmap_mode="r")
            if image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3:
                return image
        except (OSError, ValueError):  # not there yet, or torn by a crash: decode and write it again
            pass
        image = read_rgb(path)
        write_npy(entry, image)
        return image


def write_npy(path: Path, array: np.ndarray) -> None:
    """np.save to a unique temporary name beside `path`, then rename: readers see all of it or nothing."""
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{secrets.token_hex(4)}.npy")
    try:
        np.save(tmp, array)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def build_image_cache(kind: str, paths: list[Path], folder: str | Path, progress: bool = True):
    """The reader `CocoDetection` decodes its images through: NoCache, RamCache(paths) or DiskCache(folder)."""
    if kind not in CACHE_KINDS:
        raise UserError(f"config key 'data.cache_images': {kind!r} is not one of '', ram, disk")
    if kind == "ram":
        cache = RamCache(paths, progress)
        tqdm.write(f"data.cache_images=ram: {len(paths)} images, {cache.nbytes / 2**20:.1f} MB")
        return cache
    return DiskCache(folder) if kind == "disk" else NoCache()
