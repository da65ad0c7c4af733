"""The one code path of the project that downloads: a known weights file into torch's hub cache, checked.

Written to a temporary name and renamed only when the sha256 prefix of torchvision's file name matches.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import socket
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from datasets.core.atomic import atomic_path
from datasets.core.errors import UserError
from detection.weights.catalog import WeightsEntry, cache_dir

MIRROR_ENV = "DETPIPE_WEIGHTS_MIRROR"
CHUNK = 1 << 20


def download_url(entry: WeightsEntry) -> str:
    """torchvision's URL, or the same file name under $DETPIPE_WEIGHTS_MIRROR."""
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    return f"{mirror.rstrip('/')}/{entry.file_name}" if mirror else entry.url


def fetch(entry: WeightsEntry, progress: bool = True, timeout: float = 30.0) -> Path:
    """Download `entry` into the cache (nothing when it is there already); its path. UserError on no network,
    an HTTP error, a short read or a wrong hash, leaving nothing behind."""
    target = cache_dir() / entry.file_name
    if target.is_file():
        return target
    url = download_url(entry)
    with atomic_path(target, suffix=".part") as tmp:
        digest = _download(url, tmp, progress, timeout)
        if not digest.startswith(entry.sha256_prefix):
            raise UserError(f"{url}: sha256 {digest[:12]}... does not start with {entry.sha256_prefix}, the hash "
                            f"in the name {entry.file_name}; the download was discarded")
    return target


def _download(url: str, dest: Path, progress: bool, timeout: float) -> str:
    """Stream `url` into `dest` with a progress bar; the sha256 hex digest of what came."""
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(dest, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            received = 0
            with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=url.rsplit("/", 1)[-1],
                      disable=None if progress else True) as bar:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as exc:
        raise UserError(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, socket.timeout, ConnectionError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        raise UserError(f"cannot download {url}: {reason} (no network? {MIRROR_ENV}=URL names a mirror of the "
                        f"same file names; or copy the file into {dest.parent})") from None
    if total is not None and received != total:
        raise UserError(f"cannot download {url}: got {received} of {total} bytes (connection cut); try again")
    return digest.hexdigest()
