"""The servers' processes: daemons, not our children, so their end is watched through psutil."""

from __future__ import annotations

import signal
import socket
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


def unblocked_signals() -> None:
    """``preexec_fn`` for a server started while the wrapper takes its signals synchronously
    (blocked): a daemon inherits the mask, and Redis would never see the SIGTERM that stops it."""
    signal.pthread_sigmask(signal.SIG_SETMASK, set())


def port_holder(port: int) -> str | None:
    """None while 127.0.0.1:``port`` can be listened on, else who holds it (as far as the
    system says). SO_REUSEADDR as the servers use it: connections of a killed server that
    linger in TIME_WAIT do not count."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
            return None
        except OSError:
            pass
    with suppress(psutil.Error, OSError):
        for conn in psutil.net_connections(kind="tcp"):
            listening = conn.status == psutil.CONN_LISTEN and conn.laddr
            if listening and conn.laddr.port == port and conn.pid is not None:
                with suppress(psutil.Error):
                    return f"another program (pid {conn.pid}, {psutil.Process(conn.pid).name()})"
                return f"another program (pid {conn.pid})"
    return "another program"
