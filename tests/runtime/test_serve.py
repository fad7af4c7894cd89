"""`manage.py serve` against a throwaway database: gunicorn answers, a Celery worker answers
through the broker, beat keeps its schedule in the data dir, the admin login it prints works,
and SIGINT (or a child's death) stops every process it started."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from contextlib import suppress
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psutil
import psycopg
import pytest
import requests
from django.conf import settings
from psycopg import sql

from metrics_source.runtime.beat import beat_health

pytestmark = pytest.mark.slow

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture
def throwaway_database():
    """A database created for one test on the suite's server and dropped after it."""
    config = settings.DATABASES["default"]
    server = {
        "host": config["HOST"] or None,
        "port": config["PORT"] or None,
        "user": config["USER"] or None,
        "password": config["PASSWORD"] or None,
        "dbname": "postgres",
        "autocommit": True,
        "connect_timeout": 10,
    }
    name = f"serve_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(**server) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = urlsplit(os.environ["DATABASE_URL"])
    try:
        yield urlunsplit(url._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(**server) as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def apart_broker_url(offset: int) -> str:
    """The suite's Redis in another numbered database, one per test, so a worker started here
    never takes tasks other tests queue, nor answers another test's ping (pytest-xdist runs
    tests side by side)."""
    url = urlsplit(settings.CELERY_BROKER_URL)
    number = (int(url.path.strip("/") or 0) + offset) % 16
    return urlunsplit(url._replace(path=f"/{number}"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve_env(
    database_url: str, data_dir: Path, port: int, broker_offset: int, **extra: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"ADMIN_PASSWORD", "REDIS_URL"}}
    env.update(
        DATABASE_URL=database_url,
        CELERY_BROKER_URL=apart_broker_url(broker_offset),
        SECRET_KEY=settings.SECRET_KEY,
        DEBUG="0",
        BIND=f"127.0.0.1:{port}",
        WEB_CONCURRENCY="1",
        CELERY_WORKER_CONCURRENCY="1",
        METRICS_SOURCE_DATA_DIR=str(data_dir),
    )
    env.update(extra)
    return env


def start_serve(env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "serve"],
        cwd=PROJECT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_until(condition, timeout: float, what: str, process: subprocess.Popen, log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"serve exited ({process.returncode}):\n{log.read_text()}"
        result = condition()
        if result:
            return result
        time.sleep(0.3)
    raise AssertionError(f"{what} within {timeout}s\n{log.read_text()[-3000:]}")


def healthy(base: str):
    with suppress(requests.RequestException):
        response = requests.get(f"{base}/healthz", timeout=5)
        return response.status_code == 200 and response
    return False


def celery_ping(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "celery", "-A", "metrics_source",
         "inspect", "ping", "--timeout", "3"],
        cwd=PROJECT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def descendants(process: subprocess.Popen) -> list[psutil.Process]:
    with suppress(psutil.NoSuchProcess):
        return psutil.Process(process.pid).children(recursive=True)
    return []


def still_running(processes: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    _, alive = psutil.wait_procs(processes, timeout=timeout)
    return [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]


def end_all(process: subprocess.Popen | None, children: list[psutil.Process]) -> None:
    for child in children:
        with suppress(psutil.Error):
            child.kill()
    if process is not None and process.poll() is None:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def port_closed(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(2)
        return probe.connect_ex(("127.0.0.1", port)) != 0


def log_in(base: str, password: str) -> requests.Response:
    session = requests.Session()
    form = session.get(f"{base}/admin/login/", timeout=10)
    assert form.status_code == 200
    return session.post(
        f"{base}/admin/login/?next=/admin/",
        data={
            "username": "admin",
            "password": password,
            "next": "/admin/",
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
        headers={"Referer": f"{base}/admin/login/"},
        timeout=10,
    )


def test_serve_runs_web_worker_and_beat_and_stops_on_sigint(tmp_path, throwaway_database):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = serve_env(throwaway_database, tmp_path / "data", port, broker_offset=8)
    log = tmp_path / "serve.log"
    serve, children = None, []
    try:
        serve = start_serve(env, log)
        health = wait_until(lambda: healthy(base), 120, "no 200 from /healthz", serve, log)
        assert health.json()["database"] == "ok"
        pong = wait_until(
            lambda: (result := celery_ping(env)).returncode == 0 and result,
            90,
            "no Celery worker answered a ping",
            serve,
            log,
        )
        assert "pong" in pong.stdout
        # Beat keeps its schedule in the data dir and hands tasks to the broker on time: the
        # health check compose runs for it passes.
        schedule = tmp_path / "data" / "celerybeat-schedule"
        wait_until(
            lambda: beat_health(schedule) is None,
            60,
            "beat handed no task to the broker",
            serve,
            log,
        )

        output = log.read_text()
        for path in ("/", "/admin/", "/api/docs"):
            assert f"{base}{path}" in output
        created = re.search(r"user admin, password (\S+)", output)
        assert created, output
        assert output.count(created.group(1)) == 1  # printed once, never logged again

        # DEBUG is off: the admin's pages link their stylesheets, and those load.
        page = requests.get(f"{base}/admin/login/", timeout=10)
        assert page.status_code == 200
        stylesheet = re.search(r'href="([^"]*admin/css/base[^"]*\.css)"', page.text)
        assert stylesheet, page.text[:1000]
        css = requests.get(f"{base}{stylesheet.group(1)}", timeout=10)
        assert css.status_code == 200
        assert css.headers["Content-Type"].startswith("text/css")
        assert requests.get(f"{base}/api/docs", timeout=10).status_code == 200

        # The printed password logs in; a wrong one does not.
        refused = log_in(base, created.group(1) + "x")
        assert refused.status_code == 200
        assert refused.url.startswith(f"{base}/admin/login/")  # the form again
        signed_in = log_in(base, created.group(1))
        assert signed_in.status_code == 200
        assert signed_in.url == f"{base}/admin/"

        children = descendants(serve)
        assert len(children) >= 4  # gunicorn master and worker, Celery worker (+ pool), beat
        serve.send_signal(signal.SIGINT)
        assert serve.wait(60) == 0, log.read_text()[-3000:]
        assert "metrics-source stopped." in log.read_text()
        assert still_running(children, timeout=10) == []
        assert port_closed(port)
        assert celery_ping(env).returncode != 0  # the worker that answered was this one

        again = subprocess.run(
            [sys.executable, "manage.py", "ensure_admin"],
            cwd=PROJECT, env=env, capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        assert "existing superuser" in again.stdout
        assert created.group(1) not in again.stdout + again.stderr
    finally:
        end_all(serve, children or (descendants(serve) if serve else []))


def test_serve_stops_everything_when_a_child_dies(tmp_path, throwaway_database):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    password = f"chosen-{uuid.uuid4().hex}"
    env = serve_env(
        throwaway_database, tmp_path / "data", port, broker_offset=9, ADMIN_PASSWORD=password
    )
    log = tmp_path / "serve.log"
    serve, children = None, []
    try:
        serve = start_serve(env, log)
        wait_until(lambda: healthy(base), 120, "no 200 from /healthz", serve, log)
        children = wait_until(
            lambda: len(found := descendants(serve)) >= 4 and found,
            60,
            "the three children did not start",
            serve,
            log,
        )
        direct = psutil.Process(serve.pid).children()
        gunicorn = next(p for p in direct if "gunicorn" in " ".join(p.cmdline()))
        gunicorn.kill()

        assert serve.wait(60) != 0
        output = log.read_text()
        assert "gunicorn exited unexpectedly" in output
        assert "the password in ADMIN_PASSWORD" in output
        assert password not in output
        assert still_running(children, timeout=10) == []
        assert port_closed(port)
    finally:
        end_all(serve, children or (descendants(serve) if serve else []))
