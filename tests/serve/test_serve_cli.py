"""The two commands that start the service: `python -m serve.smoke` and `python -m serve`.

Each runs as a real subprocess with its own Ray on loopback and must stop cleanly.
"""
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from serve.client import DetectClient
from serve.launch import free_port

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def test_smoke_serves_one_image_and_stops(tiny_checkpoint, shapes_image):
    cmd = [sys.executable, "-m", "serve.smoke", "--checkpoint", str(tiny_checkpoint), "--image", str(shapes_image),
           "--score-threshold", "0.01"]
    done = subprocess.run(cmd, env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    answer = json.loads("\n".join(lines[lines.index("{"):lines.index("}") + 1]))
    assert answer["width"] > 0 and answer["detections_total"] >= len(answer["detections"])
    assert lines[-1] == "service stopped"


def test_serve_command_two_models_then_sigterm(tiny_checkpoint):
    port = free_port()
    cmd = [sys.executable, "-m", "serve", "--checkpoint", f"a={tiny_checkpoint}", "--checkpoint",
           f"b={tiny_checkpoint}", "--port", str(port), "--max-batch-size", "4"]
    proc = subprocess.Popen(cmd, env=ENV, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        client = DetectClient(f"http://127.0.0.1:{port}")
        assert client.wait_ready(timeout=180)["models"] == {"a": "ready", "b": "ready"}
        listing = client.models()
        assert [m["name"] for m in listing["models"]] == ["a", "b"]
        assert listing["models"][0]["max_batch_size"] == 4
        deadline = time.monotonic() + 60
        while not any(line.startswith("serving a, b at http://127.0.0.1:") for line in lines):
            assert time.monotonic() < deadline and proc.poll() is None, "".join(lines)
            time.sleep(0.2)
    finally:
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)  # to the main process alone (the group: test_serve_signals.py)
        proc.wait(timeout=120)
        seconds = time.monotonic() - start
        reader.join(timeout=10)
    assert proc.returncode == 0, "".join(lines)
    assert "shutting down\n" in lines
    assert seconds < 10, f"took {seconds:.1f} s to stop"
    assert not [line for line in lines if "Traceback" in line or "ERROR" in line], "".join(lines)


@pytest.mark.parametrize("args,message", [
    (["--checkpoint", "missing.pt"], "no checkpoint file at missing.pt"),
    (["--checkpoint", "{ckpt}", "--name", "bad name"], "--name 'bad name'"),
    (["--checkpoint", "{ckpt}", "--checkpoint", "{ckpt}"], "given twice"),
])
def test_serve_command_refuses_bad_arguments(tiny_checkpoint, args, message):
    args = [a.replace("{ckpt}", str(tiny_checkpoint)) for a in args]
    done = subprocess.run([sys.executable, "-m", "serve", *args], env=ENV, cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.startswith("error: ") and message in done.stderr and "Traceback" not in done.stderr


def test_serve_command_usage_error_prints_the_usage():
    """A wrong flag: argparse's usage and error, exit 2, before any child process or Ray starts."""
    done = subprocess.run([sys.executable, "-m", "serve", "--no-such-flag"], env=ENV, cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("usage: python -m serve") and "unrecognized arguments: --no-such-flag" in done.stderr
