"""Real processes of the project for tests: any command with its output in a log, and a
gunicorn serving the project as in production (its own process, its own database sessions)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

PROJECT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running(
    argv: list[str], env: dict[str, str], log: Path, *, stop_within: float = 60
) -> Iterator[subprocess.Popen]:
    """``argv`` in the project directory, its output in ``log``; stopped (SIGTERM, then
    SIGKILL after ``stop_within`` seconds) when the block ends."""
    with log.open("wb") as out:
        process = subprocess.Popen(argv, env=env, cwd=PROJECT, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=stop_within)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=stop_within)


@contextmanager
def gunicorn(env: dict[str, str], log_path: Path, *options: str) -> Iterator[str]:
    """gunicorn with one sync worker on a free loopback port; yields its base URL once it
    answers, and stops it afterwards. Its output goes to ``log_path``."""
    port = free_port()
    command = [
        sys.executable, "-m", "gunicorn", "metrics_source.wsgi:application",
        "--bind", f"127.0.0.1:{port}", "--workers", "1", "--no-control-socket", *options,
    ]  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    with running(command, env, log_path, stop_within=10) as process:
        # The socket listens at once but the worker may still be importing Django: wait for
        # a first answer (whatever its status), within a bound.
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log_path.read_text()
            try:
                requests.get(f"{base}/healthz", timeout=10)
                break
            except requests.RequestException:
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.1)
        yield base
