"""Real processes of the project for tests: any command with its output in a log, a bare
gunicorn, and the web service as production runs it (the buffering front before gunicorn),
each in its own processes with their own database sessions."""

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
        # The socket listens at once but the worker may still be importing Django.
        wait_for_answer(base, process, log_path)
        yield base


def wait_for_answer(base: str, process: subprocess.Popen, log_path: Path) -> None:
    """Until the project answers ``/healthz`` (whatever its status), within a bound; the
    front's own 503 while gunicorn is still starting is no answer yet."""
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, log_path.read_text()
        try:
            response = requests.get(f"{base}/healthz", timeout=10)
            if "could not answer" not in response.text:
                return
        except requests.RequestException:
            pass
        assert time.monotonic() < deadline, log_path.read_text()
        time.sleep(0.1)


@contextmanager
def web_front(env: dict[str, str], log_path: Path, *, workers: int = 1) -> Iterator[str]:
    """The web service as `make run` and the container run it (``serve --web-only``: the
    buffering front on a free loopback port, gunicorn with ``workers`` sync workers behind it
    on a private Unix socket); yields the front's base URL once gunicorn answers through it."""
    port = free_port()
    command = [sys.executable, "manage.py", "serve", "--web-only"]
    served_env = {**env, "BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": str(workers)}
    base = f"http://127.0.0.1:{port}"
    with running(command, served_env, log_path, stop_within=40) as process:
        wait_for_answer(base, process, log_path)
        yield base
