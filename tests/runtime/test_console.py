"""`manage.py serve`'s console at LOG_LEVEL=INFO: with beat sending the sweep every two seconds
and the rollup every five, no line about that routine work appears, while the start-up lines
and a task that fails still do; at DEBUG the routine lines are there."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from metrics_source.runtime.beat import beat_health
from tests.runtime.test_serve import (
    PROJECT,
    descendants,
    end_all,
    free_port,
    healthy,
    serve_env,
    start_serve,
    throwaway_database,  # noqa: F401 (the fixture)
    wait_until,
)

pytestmark = pytest.mark.slow

ROUTINE = ("Sending due task", "] received", "] succeeded in")
QUIET_SECONDS = 25


def send_failing_task(env: dict[str, str]) -> None:
    """A delivery task given an id that is no number: it fails inside the task, in the worker."""
    subprocess.run(
        [sys.executable, "-m", "celery", "-A", "metrics_source", "call",
         "metrics_source.tasks.deliver_destination", "--args", '["not-a-number"]'],
        cwd=PROJECT, env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip


def test_serve_at_info_prints_no_routine_line_but_start_up_and_failures(
    tmp_path,
    throwaway_database,  # noqa: F811
):
    port = free_port()
    env = serve_env(throwaway_database, tmp_path / "data", port, broker_offset=10, LOG_LEVEL="INFO")
    log = tmp_path / "serve.log"
    serve = None
    try:
        serve = start_serve(env, log)
        wait_until(lambda: healthy(f"http://127.0.0.1:{port}"), 120, "no /healthz", serve, log)
        wait_until(lambda: "ready." in log.read_text(), 60, "the worker not ready", serve, log)
        started = time.monotonic()
        send_failing_task(env)
        wait_until(
            lambda: "raised unexpected" in log.read_text(), 60, "no failure logged", serve, log
        )
        time.sleep(max(0.0, QUIET_SECONDS - (time.monotonic() - started)))
        # Beat did hand the sweep and the rollup over meanwhile: the quiet is not idleness.
        assert beat_health(tmp_path / "data" / "celerybeat-schedule") is None

        serve.send_signal(signal.SIGINT)
        assert serve.wait(60) == 0
        output = log.read_text()
        for routine in ROUTINE:
            assert routine not in output, output[-3000:]
        for start_up in (
            "metrics-source is starting",
            "Web front listening at: http://127.0.0.1:",
            "Listening at: unix:",  # gunicorn, behind the front
            "beat: Starting...",
            "celery@",
            "metrics-source stopped.",
        ):
            assert start_up in output, output[-3000:]
        failure = next(line for line in output.splitlines() if "raised unexpected" in line)
        assert "ERROR" in failure
        assert "metrics_source.tasks.deliver_destination" in failure
        assert "ValueError" in failure
    finally:
        end_all(serve, descendants(serve) if serve else [])


def test_serve_at_debug_prints_the_routine_lines(tmp_path, throwaway_database):  # noqa: F811
    port = free_port()
    env = serve_env(
        throwaway_database, tmp_path / "data", port, broker_offset=11, LOG_LEVEL="DEBUG"
    )
    log = tmp_path / "serve.log"
    serve = None
    try:
        serve = start_serve(env, log)
        wait_until(
            lambda: all(routine in log.read_text() for routine in ROUTINE),
            120,
            "routine lines missing at DEBUG",
            serve,
            log,
        )
        lines = log.read_text().splitlines()
        sent = next(line for line in lines if "Sending due task" in line)
        assert "DEBUG" in sent
    finally:
        end_all(serve, descendants(serve) if serve else [])
