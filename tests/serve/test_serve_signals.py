"""`python -m serve` stops cleanly however the signal arrives: SIGTERM or Ctrl-C (SIGINT) to its whole process group,
as systemd and terminals send them. Within 10 s, exit status 0, no error on stderr, no process left behind.
(SIGTERM to the main process alone is tested in test_serve_cli.py.)"""
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from serve.launch import free_port

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
STOP_WITHIN_S = 10.0


def start_service(checkpoint: Path) -> tuple[subprocess.Popen, list[str], list[str]]:
    """`python -m serve` in a process group of its own (as a shell job or a systemd unit); returns once it
    says it serves, with its stdout and stderr lines (still filling)."""
    cmd = [sys.executable, "-m", "serve", "--checkpoint", f"a={checkpoint}", "--port", str(free_port())]
    proc = subprocess.Popen(cmd, env=ENV, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    out: list[str] = []
    err: list[str] = []
    for stream, lines in ((proc.stdout, out), (proc.stderr, err)):
        threading.Thread(target=lambda s=stream, ls=lines: ls.extend(s), daemon=True).start()
    deadline = time.monotonic() + 180
    while not any(line.startswith("serving a at http://") for line in out):
        assert time.monotonic() < deadline and proc.poll() is None, "".join(out + err)
        time.sleep(0.2)
    return proc, out, err


def proc_stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, state letter) of a process from /proc, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[1]), fields[0]


def descendants(pid: int) -> list[int]:
    """The process and all its descendants (the child driver, Ray's GCS, raylet, replicas), from /proc."""
    parents = {int(p.name): proc_stat(int(p.name)) for p in Path("/proc").iterdir() if p.name.isdigit()}
    found, frontier = [pid], [pid]
    while frontier:
        frontier = [c for c, st in parents.items() if st and st[0] in frontier and c not in found]
        found += frontier
    return found


def alive(pids: list[int]) -> list[str]:
    """Those of `pids` still running (zombies count as gone: their parent reaps them), with their commands."""
    left = []
    for pid in pids:
        st = proc_stat(pid)
        if st and st[1] != "Z":
            try:
                left.append(f"{pid} {Path(f'/proc/{pid}/cmdline').read_bytes().replace(bytes(1), b' ')[:80]!r}")
            except OSError:
                pass
    return left


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["group-sigterm", "group-ctrl-c"])
def test_a_signal_to_the_whole_group_stops_cleanly(tiny_checkpoint, sig):
    proc, out, err = start_service(tiny_checkpoint)
    processes = descendants(proc.pid)
    assert any("raylet" in entry for entry in alive(processes)), alive(processes)
    start = time.monotonic()
    try:
        os.killpg(proc.pid, sig)
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    seconds = time.monotonic() - start
    time.sleep(0.5)  # the readers catch the last lines
    assert code == 0, "".join(out + err)
    assert seconds < STOP_WITHIN_S, f"took {seconds:.1f} s"
    assert out[-1] == "shutting down\n"
    bad = [line for line in err if re.search(r"error|traceback|exception", line, re.IGNORECASE)]
    assert not bad, "".join(bad)
    deadline = time.monotonic() + 5
    while alive(processes) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive(processes), alive(processes)
