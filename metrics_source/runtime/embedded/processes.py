"""The servers' processes: daemons, not our children, so their end is watched through psutil."""

from __future__ import annotations

import signal
import time
from contextlib import suppress

import psutil


def alive(pid: int) -> bool:
    """True for a running process (a zombie has finished, only its exit status is left)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def terminate(
    process: psutil.Process, *, timeout: float, first: signal.Signals = signal.SIGTERM
) -> None:
    """``first``, a bounded wait, then SIGKILL. The servers are daemons, not our children: once
    they exit they may linger as zombies until init reaps them, so a zombie counts as gone."""
    for signo, wait in ((first, timeout), (signal.SIGKILL, 10)):
        with suppress(psutil.Error):
            process.send_signal(signo)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not alive(process.pid):
                return
            time.sleep(0.05)
