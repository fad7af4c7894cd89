"""Keep `manage.py serve`'s children running: each starts in a session of its own; one that
dies is restarted by itself after a backoff (the others never notice); a stop request ends
them all, in order, with a bounded wait.

A child that keeps dying right after it starts (a broken setting, a server that is down) is
retried for as long as serve runs, at most every MAX_DELAY seconds: the rest of the system
keeps serving meanwhile, and it comes back on its own once the cause is gone.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

FIRST_DELAY = 1.0  # seconds before restarting a child that died after a healthy run
MAX_DELAY = 30.0  # the backoff doubles up to this
# A child that stayed up this long was healthy: its next death starts the backoff afresh.
HEALTHY_AFTER = 60.0
# This many deaths in a row, each before HEALTHY_AFTER, is a crash loop worth saying so.
CRASH_LOOP_AFTER = 5
POLL = 0.2

_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
_PR_SET_PDEATHSIG = 1


def child_setup(parent: int) -> None:
    """In the child before exec: its own session, so the terminal's Ctrl-C reaches only serve,
    which then stops every child once and in order; and SIGTERM if serve itself dies."""
    os.setsid()
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # serve died before prctl took effect
            os._exit(1)


@dataclass(frozen=True)
class Backoff:
    first: float = FIRST_DELAY
    cap: float = MAX_DELAY
    healthy_after: float = HEALTHY_AFTER
    crash_loop_after: int = CRASH_LOOP_AFTER

    def delay(self, failures: int) -> float:
        """Seconds to wait before the restart that follows `failures` quick deaths in a row."""
        return min(self.first * 2 ** max(failures - 1, 0), self.cap)


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by {name} (code {code})"
    return f"exit code {code}"


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    failures: int = 0  # deaths in a row, each before HEALTHY_AFTER
    restart_at: float | None = None  # when a dead child is due to start again

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal_group(self, signo: int) -> None:
        if self.process is None:
            return
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signo)


@dataclass
class Supervisor:
    children: Sequence[Child]
    spawn: Callable[[list[str]], subprocess.Popen]
    backoff: Backoff = field(default_factory=Backoff)

    def start_all(self) -> None:
        """Start every child; an error here (no such program) is the caller's to report."""
        for child in self.children:
            child.process, child.started_at = self.spawn(child.argv), time.monotonic()

    def watch(self, stopping: Callable[[], bool]) -> None:
        """Restart children that die until `stopping()` turns true."""
        while not stopping():
            now = time.monotonic()
            for child in self.children:
                if child.restart_at is not None:
                    if now >= child.restart_at:
                        self._restart(child)
                elif child.process is not None and (code := child.process.poll()) is not None:
                    self._died(child, code, now)
            time.sleep(POLL)

    def _died(self, child: Child, code: int, now: float) -> None:
        assert child.process is not None
        # What the dead main process leaves behind goes too: gunicorn's workers would hold
        # the listening socket the new master needs; Celery's pool processes would linger.
        child.signal_group(signal.SIGKILL)
        uptime = now - child.started_at
        child.failures = 1 if uptime >= self.backoff.healthy_after else child.failures + 1
        delay = self.backoff.delay(child.failures)
        child.restart_at = now + delay
        logger.warning(
            "%s (pid %d) exited after %.1f s: %s; restarting it in %.1f s",
            child.name, child.process.pid, uptime, describe_exit(code), delay,
        )  # fmt: skip
        if child.failures == self.backoff.crash_loop_after:  # once; each death has its line
            logger.error(
                "%s has died %d times in a row, each within %g s of starting; it is retried "
                "every %g s at most while the rest keeps running",
                child.name, child.failures, self.backoff.healthy_after, self.backoff.cap,
            )  # fmt: skip

    def _restart(self, child: Child) -> None:
        now = time.monotonic()
        child.restart_at = None
        try:
            child.process, child.started_at = self.spawn(child.argv), now
        except OSError as error:
            child.process = None
            child.failures += 1
            delay = self.backoff.delay(child.failures)
            child.restart_at = now + delay
            logger.error("cannot restart %s: %s; trying again in %.1f s", child.name, error, delay)
            return
        logger.info("%s restarted (pid %d)", child.name, child.process.pid)

    def stop(
        self, *, timeout: float, give_up: Callable[[], bool], report: Callable[[str], object]
    ) -> None:
        """SIGTERM to each main process (gunicorn and Celery stop their own workers), a bounded
        wait (cut short when `give_up()` turns true), then SIGKILL to whatever is left in each
        child's process group."""
        for child in self.children:
            child.restart_at = None
            if child.running:
                assert child.process is not None
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while not give_up() and time.monotonic() < deadline:
            if not any(child.running for child in self.children):
                break
            time.sleep(POLL)
        for child in self.children:
            if child.process is None:
                continue
            child.signal_group(signal.SIGKILL)  # stragglers: pool processes, hung workers
            try:
                child.process.wait(10)
            except subprocess.TimeoutExpired:
                report(f"{child.name} (pid {child.process.pid}) did not exit")
