"""Load on the detection service over loopback: throughput, p50/p99 latency and errors at several concurrencies.

In the same run: a bare echo deployment on the same Ray Serve (the floor), the service, the service unbatched, and
the model in-process (one image, and batched). Prints a table, then one JSON line.
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

from datasets.core.errors import UserError, cli_main  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python benchmarks/serve_load.py", description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--image", help="image to send (default: a synthetic shapes image of the model's input size)")
    p.add_argument("--requests", type=int, default=128, help="requests per concurrency level")
    p.add_argument("--quick", action="store_true", help="32 requests per level (a rough figure in ~1 minute)")
    p.add_argument("--concurrency", default="1,8,32")
    p.add_argument("--max-batch-size", type=int, default=8)
    p.add_argument("--batch-wait-ms", type=float, default=0.0)
    p.add_argument("--score-threshold", type=float, default=0.3)
    p.add_argument("--torch-threads", type=int, default=1, help="torch threads, in process and per replica")
    args = p.parse_args(argv)
    if args.quick:
        args.requests = 32
    return args


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
    from detection.inference.predictor import Predictor

    predictor = Predictor.from_checkpoint(checkpoint, device="auto")
    single = []
    for _ in range(min(total, 64)):
        start = time.perf_counter()
        predictor.predict([rgb], threshold)
        single.append((time.perf_counter() - start) * 1000)
    rates: dict[int, float] = {}
    for size in (batch_size, 1):
        predictor.predict([rgb] * size, threshold)  # warm-up
        start, done = time.perf_counter(), 0
        while done < total:
            predictor.predict([rgb] * size, threshold)
            done += size
        rates[size] = done / (time.perf_counter() - start)
    return {"single_image_p50_ms": round(float(np.median(single)), 2),
            "batched_images_per_s": round(rates[batch_size], 1), "unbatched_images_per_s": round(rates[1], 1),
            "batch_size": batch_size, "device": str(predictor.device), "torch_threads": _threads()}


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def load(url: str, body: bytes, concurrency: int, total: int, threshold: float, path: str = "/v1/detect") -> dict:
    """`total` POSTs with `concurrency` workers: images/s, p50/p99 latency (ms), errors, mean batch size."""
    import requests

    local = threading.local()
    content_type = "image/jpeg" if body[:3] == b"\xff\xd8\xff" else "image/png"

    def one(_: int) -> tuple[float, int, int]:
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        start = time.perf_counter()
        try:
            r = session.post(f"{url}{path}", data=body, headers={"Content-Type": content_type},
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


def serve_levels(args: argparse.Namespace, body: bytes, levels: list[int]) -> tuple[dict, dict, dict, dict]:
    """Start the service and the echo app beside it; load both at each level, then the service unbatched, then
    with the model in a deployment of its own (colocate=false, two hops) at the lowest level."""
    from ray import serve

    from serve import launch
    from serve.app import build_app
    from serve.echo import echo_app

    options = {"checkpoints": {"bench": args.checkpoint}, "max_batch_size": args.max_batch_size,
               "batch_wait_timeout_s": args.batch_wait_ms / 1000, "torch_threads": args.torch_threads,
               "max_ongoing_requests": max(64, 2 * max(levels))}
    url = launch.start(options, port=launch.free_port(), quiet=True)
    try:
        serve.run(echo_app(), name="echo", route_prefix="/echo")
        echo, served = {}, {}
        for c in levels:  # echo and service in turn, so both see the same background load
            echo[str(c)] = load(url + "/echo", body, c, args.requests, args.score_threshold)
            served[str(c)] = load(url, body, c, args.requests, args.score_threshold)
        serve.run(build_app({**options, "max_batch_size": 1}), name=launch.APP_NAME, route_prefix="/")
        unbatched = load(url, body, max(levels), args.requests, args.score_threshold)
        serve.run(build_app({**options, "colocate": False}), name=launch.APP_NAME, route_prefix="/")
        separate = load(url, body, min(levels), args.requests, args.score_threshold)
    finally:
        launch.stop()
    return echo, served, unbatched, separate


def summary(args: argparse.Namespace, rgb: np.ndarray, levels: list[int], local: tuple[dict, dict],
            echo: dict, served: dict, unbatched: dict, separate: dict) -> dict:
    """All figures and the targets; in-process is the better of the runs before and after serving."""
    best = max(local, key=lambda r: r["batched_images_per_s"])["batched_images_per_s"]
    single_ms = min(r["single_image_p50_ms"] for r in local)
    top, low = str(max(levels)), str(min(levels))
    ratios = {c: round(s["images_per_s"] / best, 2) for c, s in served.items()}
    gain = round(served[top]["images_per_s"] / max(unbatched["images_per_s"], 1e-9), 2)
    errors = sum(s["errors"] for s in served.values()) + unbatched["errors"]
    overhead = round(served[low]["p50_ms"] - echo[low]["p50_ms"] - single_ms, 1)
    return {"benchmark": "serve_load", "image": f"{rgb.shape[1]}x{rgb.shape[0]}", "cpus": os.cpu_count(),
            "torch_threads": args.torch_threads, "max_batch_size": args.max_batch_size,
            "batch_wait_ms": args.batch_wait_ms, "in_process_before": local[0], "in_process_after": local[1],
            "echo": echo, "served": served, f"served_unbatched_c{top}": unbatched,
            "served_over_in_process": ratios, f"batching_gain_c{top}": gain,
            f"overhead_c{low}_ms": overhead, f"served_separate_model_deployment_c{low}": separate,
            f"overhead_separate_c{low}_ms": round(separate["p50_ms"] - echo[low]["p50_ms"] - single_ms, 1),
            "targets": {"zero_errors": errors == 0,
                        f"c{low}_p50_le_echo_plus_in_process_plus_5ms": overhead <= 5.0,
                        f"served_c{top}_ge_0.8x_in_process": ratios[top] >= 0.8,
                        f"batching_ge_2x_at_c{top}": gain >= 2.0}}


def table(result: dict) -> str:
    """The figures as a readable table: echo, service and in-process side by side per concurrency."""
    local = result["in_process_before"]
    lines = [f"{'concurrency':>11} | {'echo p50':>8} {'p99':>7} {'img/s':>7} | {'service p50':>11} {'p99':>7} "
             f"{'img/s':>7} {'batch':>5} | served/in-process"]
    for c, s in result["served"].items():
        e = result["echo"][c]
        lines.append(f"{c:>11} | {e['p50_ms']:>8} {e['p99_ms']:>7} {e['images_per_s']:>7} | {s['p50_ms']:>11} "
                     f"{s['p99_ms']:>7} {s['images_per_s']:>7} {s['mean_batch_size']:>5} | "
                     f"{result['served_over_in_process'][c]}")
    lines.append(f"in-process: one image {local['single_image_p50_ms']} ms, batched "
                 f"{local['batched_images_per_s']} img/s; overhead at c=1 (service - echo - in-process) "
                 f"{result[next(k for k in result if k.startswith('overhead_'))]} ms")
    low = next(k for k in result if k.startswith("overhead_separate_"))
    lines.append(f"the model in a deployment of its own (colocate=false, two hops): overhead at c=1 {result[low]} ms")
    lines.append("targets: " + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in result["targets"].items()))
    return "\n".join(lines)


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
    echo, served, unbatched, separate = serve_levels(args, body, levels)
    after = in_process(args.checkpoint, rgb, args.max_batch_size, args.requests, args.score_threshold)
    result = summary(args, rgb, levels, (before, after), echo, served, unbatched, separate)
    print(table(result))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
