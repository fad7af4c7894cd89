"""The supervisor behind `manage.py serve`, on real processes killed with SIGKILL: a child that
dies comes back after its backoff while its sibling keeps its pid; what the dead one left in its
process group goes with it; one that keeps failing is retried at the capped delay, said once."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial

import psutil

from metrics_source.runtime.supervisor import Backoff, Child, Supervisor, child_setup

LOGGER = "metrics_source.runtime.supervisor"


def spawn(argv: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, preexec_fn=partial(child_setup, os.getpid())
    )


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


SLEEPER = python("import time; time.sleep(300)")
# A main process with a process of its own, as gunicorn's master has workers.
PARENT = python(
    "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', "
    "'import time; time.sleep(300)']); time.sleep(300)"
)


@contextmanager
def supervising(children: list[Child], backoff: Backoff) -> Iterator[Supervisor]:
    """The supervisor watching in a thread of its own until the block ends, then stopping."""
    supervisor = Supervisor(children, spawn=spawn, backoff=backoff)
    supervisor.start_all()
    done = threading.Event()
    watcher = threading.Thread(target=supervisor.watch, args=(done.is_set,), daemon=True)
    watcher.start()
    try:
        yield supervisor
    finally:
        done.set()
        watcher.join(10)
        supervisor.stop(timeout=10, give_up=lambda: False, report=print)


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.05)
    raise AssertionError(f"{what} within {timeout}s")


def current_pid(child: Child) -> int | None:
    process = child.process
    return process.pid if process is not None and process.poll() is None else None


def messages(caplog, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == level]


def test_a_dead_child_is_restarted_with_its_leftovers_gone_and_its_sibling_untouched(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    steady, fragile = Child("steady", SLEEPER), Child("fragile", PARENT)
    with supervising([steady, fragile], Backoff(first=0.2)):
        steady_pid = wait_for(lambda: current_pid(steady), 10, "steady started")
        old = psutil.Process(wait_for(lambda: current_pid(fragile), 10, "fragile started"))
        leftover = wait_for(lambda: old.children(), 10, "fragile started its own process")[0]

        os.kill(old.pid, signal.SIGKILL)
        new_pid = wait_for(
            lambda: (pid := current_pid(fragile)) not in {None, old.pid} and pid,
            10,
            "fragile came back",
        )
        _, alive = psutil.wait_procs([leftover], timeout=5)
        assert [p for p in alive if p.status() != psutil.STATUS_ZOMBIE] == []
        assert current_pid(steady) == steady_pid  # never stopped
        assert psutil.Process(new_pid).cmdline()[-1] == PARENT[-1]

    warnings = messages(caplog, logging.WARNING)
    assert len(warnings) == 1, warnings
    assert re.fullmatch(
        rf"fragile \(pid {old.pid}\) exited after \d+\.\d s: killed by SIGKILL \(code -9\); "
        r"restarting it in 0\.2 s",
        warnings[0],
    ), warnings
    assert f"fragile restarted (pid {new_pid})" in messages(caplog, logging.INFO)
    # Stopped with the supervisor: nothing of either child is left.
    assert not psutil.pid_exists(new_pid) or psutil.Process(new_pid).status() == "zombie"
    assert not psutil.pid_exists(steady_pid) or psutil.Process(steady_pid).status() == "zombie"


def test_a_child_that_keeps_failing_is_retried_at_a_capped_backoff_while_the_rest_runs(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    steady, broken = Child("steady", SLEEPER), Child("broken", python("raise SystemExit(3)"))
    backoff = Backoff(first=0.2, cap=0.8, healthy_after=30, crash_loop_after=4)
    with supervising([steady, broken], backoff):
        steady_pid = wait_for(lambda: current_pid(steady), 10, "steady started")
        wait_for(lambda: len(messages(caplog, logging.WARNING)) >= 6, 30, "six deaths")
        assert current_pid(steady) == steady_pid

    deaths = [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]
    delays = [float(re.search(r"restarting it in (\S+) s", r.getMessage())[1]) for r in deaths]
    assert delays[:6] == [0.2, 0.4, 0.8, 0.8, 0.8, 0.8]
    assert all("exit code 3" in r.getMessage() for r in deaths)
    # Each restart waited its delay (a lower bound only: the machine may be slow).
    for before, after, delay in zip(deaths, deaths[1:], delays, strict=False):
        assert after.created - before.created >= delay - 0.05
    errors = messages(caplog, logging.ERROR)
    assert errors == [
        "broken has died 4 times in a row, each within 30 s of starting; it is retried "
        "every 0.8 s at most while the rest keeps running"
    ]


def test_a_child_that_ran_long_enough_starts_its_backoff_afresh(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    flaky = Child("flaky", python("import time; time.sleep(0.6); raise SystemExit(1)"))
    with supervising([flaky], Backoff(first=0.1, cap=5, healthy_after=0.3)):
        wait_for(lambda: len(messages(caplog, logging.WARNING)) >= 4, 30, "four deaths")
    deaths = messages(caplog, logging.WARNING)
    delays = [re.search(r"restarting it in (\S+) s", message)[1] for message in deaths]
    assert delays[:4] == ["0.1"] * 4
