"""Start and stop the detection service from Python: Ray (local unless RAY_ADDRESS), Serve, the app.

Used by `python -m serve`, `python -m serve.smoke` and the load benchmark.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import threading

from datasets.core.errors import UserError

from serve.options import ServiceOptions

APP_NAME = "detect"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def check_port(host: str, port: int) -> None:
    """UserError if host:port cannot be bound (already in use, or not an address of this machine)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise UserError(f"cannot listen on {host}:{port} ({exc.strerror}); pick another --port") from None


def start_ray(opts: ServiceOptions, quiet: bool) -> None:
    """Connect to RAY_ADDRESS, or start a local Ray with enough logical CPUs for every replica."""
    import ray

    if ray.is_initialized():
        return
    level = logging.ERROR if quiet else logging.INFO
    kwargs: dict = {"logging_level": level, "log_to_driver": not quiet}
    if not os.environ.get("RAY_ADDRESS"):
        replicas = len(opts.checkpoints) * (opts.replicas or 1) + (opts.tracker is not None)  # + the SiamFC one
        needed = replicas * opts.num_cpus + 1
        kwargs.update(num_cpus=max(os.cpu_count() or 1, int(needed + 0.999)), include_dashboard=False)
    on_term = signal.getsignal(signal.SIGTERM)
    ray.init(**kwargs)
    if threading.current_thread() is threading.main_thread() and on_term is not None:
        signal.signal(signal.SIGTERM, on_term)  # Ray's own SIGTERM handler would abort the process


def start(options: dict, host: str = "127.0.0.1", port: int = 8000, quiet: bool = False) -> str:
    """Start Serve with the detection app on host:port and wait until it runs; returns the base URL."""
    opts = ServiceOptions.from_dict(options)  # a bad option or checkpoint stops here, before Ray starts
    check_port(host, port)
    start_ray(opts, quiet)
    from ray import serve

    from serve.app import build_app

    logging_config = {**opts.logging_config(), **({"log_level": "WARNING"} if quiet else {})}
    if quiet:
        logging.getLogger("ray.serve").setLevel(logging.WARNING)
    serve.start(http_options={"host": host, "port": port}, logging_config=logging_config)
    if quiet:  # Serve configures its driver logger while starting
        logging.getLogger("ray.serve").setLevel(logging.WARNING)
    try:
        serve.run(build_app(options), name=APP_NAME, route_prefix="/")
    except Exception as exc:  # a replica that cannot load its checkpoint fails the deployment
        reason = _reason(exc)
        stop()
        raise UserError(f"the service did not start: {reason}") from None
    return f"http://{host}:{port}"


def _reason(exc: Exception) -> str:
    """The most telling line of a failed deployment: a replica's UserError when there is one."""
    from ray import serve

    texts = [str(exc)]
    try:
        app = serve.status().applications.get(APP_NAME)
        texts += [d.message for d in app.deployments.values()] if app else []
    except Exception:  # noqa: BLE001 - the status is only a better message; keep the first one
        pass
    lines = [line.strip() for text in texts for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        if "UserError:" in line:
            return line.split("UserError:", 1)[1].strip()
    return lines[0][:500] if lines else type(exc).__name__


def served_models(options: dict) -> list[str]:
    """The model names the service answers to for these options (the SiamFC tracker's last, when there is one)."""
    opts = ServiceOptions.from_dict(options)
    tracker = opts.tracker_checkpoint()
    return list(opts.checkpoints) + ([f"{tracker[0]} (SiamFC tracker)"] if tracker else [])


def stop() -> None:
    """Delete the app (its replicas drain gracefully), then disconnect; a local Ray stops with it."""
    import ray
    from ray import serve

    if not ray.is_initialized():
        return
    try:
        serve.delete(APP_NAME)  # serve.shutdown() would add a noisy 'graceful_shutdown failed' line
    finally:
        ray.shutdown()
