"""Load on the detection service over loopback: throughput, p50/p99 latency and errors at several concurrencies.

Compares with the same model's in-process batched throughput, and with the service unbatched; prints one JSON line.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detection.errors import UserError, cli_main  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python benchmarks/serve_load.py", description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--image", help="image to send (default: a synthetic shapes image of the model's input size)")
    p.add_argument("--requests", type=int, default=128, help="requests per concurrency level")
    p.add_argument("--concurrency", default="1,8,32")
    p.add_argument("--max-batch-size", type=int, default=8)
    p.add_argument("--batch-wait-ms", type=float, default=10.0)
    p.add_argument("--score-threshold", type=float, default=0.3)
    p.add_argument("--torch-threads", type=int, default=1, help="torch threads, in process and per replica")
    return p.parse_args(argv)


def synthetic_png(side: int, seed: int = 0) -> bytes:
    """Three filled circles on a noisy background, PNG-encoded."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 60, (side, side, 3), dtype=np.uint8)
    for _ in range(3):
        x, y = (int(v) for v in rng.integers(side // 5, side - side // 5, 2))
        color = tuple(int(c) for c in rng.integers(120, 255, 3))
        cv2.circle(image, (x, y), int(rng.integers(side // 12, side // 6)), color, -1)
    return cv2.imencode(".png", image)[1].tobytes()


def in_process(checkpoint: str, rgb: np.ndarray, batch_size: int, total: int, threshold: float) -> dict:
    """Images/s of Predictor.predict on batches of `batch_size` and of 1, in this process."""
    from detection.predictor import Predictor

    predictor = Predictor.from_checkpoint(checkpoint, device="auto")
    rates: dict[int, float] = {}
    for size in (batch_size, 1):
        predictor.predict([rgb] * size, threshold)  # warm-up
        start, done = time.perf_counter(), 0
        while done < total:
            predictor.predict([rgb] * size, threshold)
            done += size
        rates[size] = done / (time.perf_counter() - start)
    return {"batched_images_per_s": round(rates[batch_size], 1), "unbatched_images_per_s": round(rates[1], 1),
            "batch_size": batch_size, "device": str(predictor.device), "torch_threads": _threads()}


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def load(url: str, body: bytes, concurrency: int, total: int, threshold: float) -> dict:
    """`total` POSTs with `concurrency` workers: images/s, p50/p99 latency (ms), errors, mean batch size."""
    import requests

    local = threading.local()

    def one(_: int) -> tuple[float, int, int]:
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        start = time.perf_counter()
        try:
            r = session.post(f"{url}/v1/detect", data=body, headers={"Content-Type": "image/png"},
                             params={"score_threshold": threshold}, timeout=120)
            batch = r.json().get("batch_size", 0) if r.status_code == 200 else 0
            return time.perf_counter() - start, r.status_code, batch
        except requests.RequestException:
            return time.perf_counter() - start, 0, 0

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(concurrency)))  # warm-up: connections and a first batch
        start = time.perf_counter()
        results = list(pool.map(one, range(total)))
        wall = time.perf_counter() - start
    latencies = np.array([r[0] for r in results]) * 1000
    ok = [r for r in results if r[1] == 200]
    return {"images_per_s": round(len(ok) / wall, 1), "p50_ms": round(float(np.percentile(latencies, 50)), 1),
            "p99_ms": round(float(np.percentile(latencies, 99)), 1), "errors": total - len(ok),
            "mean_batch_size": round(float(np.mean([r[2] for r in ok])) if ok else 0.0, 2), "requests": total}


def serve_levels(args: argparse.Namespace, body: bytes, levels: list[int]) -> tuple[dict, dict]:
    """Start the service, load it at each level, redeploy it unbatched and load it at the top level."""
    from ray import serve

    from serve import launch
    from serve.app import build_app

    options = {"checkpoints": {"bench": args.checkpoint}, "max_batch_size": args.max_batch_size,
               "batch_wait_timeout_s": args.batch_wait_ms / 1000,
               "max_ongoing_requests": max(64, 2 * max(levels))}
    options["torch_threads"] = args.torch_threads
    url = launch.start(options, port=launch.free_port(), quiet=True)
    try:
        served = {str(c): load(url, body, c, args.requests, args.score_threshold) for c in levels}
        serve.run(build_app({**options, "max_batch_size": 1}), name=launch.APP_NAME, route_prefix="/")
        unbatched = load(url, body, max(levels), args.requests, args.score_threshold)
    finally:
        launch.stop()
    return served, unbatched


def summary(args: argparse.Namespace, rgb: np.ndarray, levels: list[int], local: tuple[dict, dict],
            served: dict, unbatched: dict) -> dict:
    """All figures and the three targets; in-process is the better of the runs before and after serving."""
    best = max(local, key=lambda r: r["batched_images_per_s"])["batched_images_per_s"]
    top = str(max(levels))
    ratios = {c: round(s["images_per_s"] / best, 2) for c, s in served.items()}
    gain = round(served[top]["images_per_s"] / max(unbatched["images_per_s"], 1e-9), 2)
    errors = sum(s["errors"] for s in served.values()) + unbatched["errors"]
    return {"benchmark": "serve_load", "image": f"{rgb.shape[1]}x{rgb.shape[0]}", "cpus": os.cpu_count(),
            "torch_threads": args.torch_threads, "max_batch_size": args.max_batch_size,
            "batch_wait_ms": args.batch_wait_ms, "in_process_before": local[0], "in_process_after": local[1],
            "served": served, f"served_unbatched_c{top}": unbatched, "served_over_in_process": ratios,
            f"batching_gain_c{top}": gain,
            "targets": {"zero_errors": errors == 0, f"served_c{top}_ge_0.8x_in_process": ratios[top] >= 0.8,
                        f"batching_ge_2x_at_c{top}": gain >= 2.0}}


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not Path(args.checkpoint).is_file():
        raise UserError(f"--checkpoint: no file at {args.checkpoint}")
    levels = [int(c) for c in args.concurrency.split(",")]
    body = Path(args.image).read_bytes() if args.image else None
    if body is None:
        from detection.engine.checkpoint import checkpoint_config, load_checkpoint

        body = synthetic_png(checkpoint_config(load_checkpoint(args.checkpoint)).data.input_size)
    rgb = cv2.cvtColor(cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    import torch

    torch.set_num_threads(args.torch_threads)
    before = in_process(args.checkpoint, rgb, args.max_batch_size, args.requests, args.score_threshold)
    served, unbatched = serve_levels(args, body, levels)
    after = in_process(args.checkpoint, rgb, args.max_batch_size, args.requests, args.score_threshold)
    print(json.dumps(summary(args, rgb, levels, (before, after), served, unbatched)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
