"""Run the service in a child process of its own session, so a signal to the whole process group stops it cleanly.

systemd, process supervisors and `kill -- -PGID` signal every process of the group: Ray's GCS and raylet would die
under the driver, which then waits 60 s for them. Here only this thin parent is in the group; it forwards the signal.
"""
from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys

CHILD_ENV = "DETPIPE_SERVE_CHILD"  # set in the child: run the service itself
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
KILL_AFTER_S = 30.0  # a child still running this long after a stop signal is killed (its Ray dies with it)


def in_child() -> bool:
    """True in the process that runs the service (the child of `supervise`)."""
    return os.environ.get(CHILD_ENV) == "1"


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM it when the parent dies (Linux), so it never outlives a killed parent."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def supervise(argv: list[str]) -> int:
    """Run `python -m serve ARGV` in a new session; forward SIGINT, SIGTERM and SIGHUP to it; its exit status."""
    child = subprocess.Popen([sys.executable, "-m", "serve", *argv], env={**os.environ, CHILD_ENV: "1"},
                             start_new_session=True, preexec_fn=_die_with_parent)
    stopping = []

    def forward(signum: int, _frame) -> None:
        if child.poll() is None:
            child.send_signal(signal.SIGINT if signum == signal.SIGINT else signal.SIGTERM)
        stopping.append(signum)

    for sig in STOP_SIGNALS:
        signal.signal(sig, forward)
    while True:
        try:
            code = child.wait(timeout=KILL_AFTER_S if stopping else None)
            return code if code >= 0 else 128 - code
        except subprocess.TimeoutExpired:
            child.kill()
            stopping.clear()
