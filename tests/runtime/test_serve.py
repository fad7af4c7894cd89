"""`manage.py serve` against a throwaway database: gunicorn answers, a Celery worker answers
through the broker, beat keeps its schedule in the data dir, the admin login it prints works,
SIGINT stops every process it started, and a child killed with SIGKILL comes back by itself
while the others keep running and nothing acknowledged is lost.

One module on purpose (over 400 lines): its tests share the helpers that start `serve` against a
throwaway database and watch its children.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
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

from metrics_source.runtime.beat import beat_health, heartbeat_path
from tests.conftest import basic_auth
from tests.forwarding_support import receiver
from tests.payloads import track_call

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


CHILDREN = ("celery worker", "celery beat", "gunicorn", "web front")


def child_process(serve: subprocess.Popen, name: str) -> psutil.Process | None:
    """serve's direct child of that name, by what it runs."""
    for process in psutil.Process(serve.pid).children():
        with suppress(psutil.Error):
            argv = process.cmdline()
            if process.status() == psutil.STATUS_ZOMBIE:
                continue
            if (
                (name == "gunicorn" and "gunicorn" in argv)
                or (name == "web front" and "metrics_source.runtime.front" in argv)
                or ("celery" in argv and name.removeprefix("celery ") in argv)
            ):
                return process
    return None


def child_pids(serve: subprocess.Popen) -> dict[str, int | None]:
    return {name: getattr(child_process(serve, name), "pid", None) for name in CHILDREN}


class Traffic:
    """Track calls posted one after another; remembers each messageId answered 200, and when."""

    def __init__(self, base: str, write_key: str) -> None:
        self.url = f"{base}/v1/track"
        self.auth = basic_auth(write_key)
        self.acknowledged: list[tuple[float, str]] = []
        self.refused = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        session = requests.Session()
        while not self.stopping.is_set():
            message_id = f"heal-{uuid.uuid4().hex}"
            call = track_call("Email Delivered", message_id=message_id)
            try:
                response = session.post(
                    self.url, json=call, headers={"Authorization": self.auth}, timeout=10
                )
            except requests.RequestException:
                self.refused += 1  # the web restarting: the sender retries, nothing was taken
                session = requests.Session()
                time.sleep(0.1)
                continue
            if response.status_code == 200:
                self.acknowledged.append((time.monotonic(), message_id))
            else:
                self.refused += 1  # the front's 503 while gunicorn restarts: retried as well
            time.sleep(0.05)

    def first_acknowledged_after(self, moment: float) -> str | None:
        return next((m for at, m in self.acknowledged if at > moment), None)

    def ids(self) -> set[str]:
        return {message_id for _, message_id in self.acknowledged}


def stored_count(database_url: str, message_ids: set[str]) -> int:
    config = settings.DATABASES["default"]
    with psycopg.connect(
        host=config["HOST"] or None,
        port=config["PORT"] or None,
        user=config["USER"] or None,
        password=config["PASSWORD"] or None,
        dbname=urlsplit(database_url).path.strip("/"),
    ) as connection:
        row = connection.execute(
            "SELECT count(*) FROM metrics_source_event WHERE message_id = ANY(%s)",
            [list(message_ids)],
        ).fetchone()
    assert row is not None
    return row[0]


def kill_and_recover(
    serve: subprocess.Popen,
    name: str,
    *,
    log: Path,
    base: str,
    heartbeat: Path,
    traffic: Traffic,
    target,
) -> tuple[float, float]:
    """SIGKILL one child's main process; wait until it is back and the system serves again;
    check the others kept their pids. Returns the seconds to the new pid and to serving."""
    before = child_pids(serve)
    old = before[name]
    assert old is not None
    killed_at, killed_wall = time.monotonic(), time.time()
    os.kill(old, signal.SIGKILL)
    new = wait_until(
        lambda: (pid := child_pids(serve)[name]) not in {None, old} and pid,
        60, f"{name} was not restarted", serve, log,
    )  # fmt: skip
    restarted_in = time.monotonic() - killed_at

    if name in {"gunicorn", "web front"}:
        wait_until(lambda: healthy(base), 60, "no 200 after restart", serve, log)
    elif name == "celery beat":
        wait_until(
            lambda: heartbeat.stat().st_mtime > killed_wall,
            60, "beat sent nothing after restart", serve, log,
        )  # fmt: skip
    # Serving again: an event taken after the kill reaches the receiver, which needs all
    # three (ingest, beat's sweep, the worker's delivery).
    fresh = wait_until(
        lambda: traffic.first_acknowledged_after(killed_at), 60, "no ingest", serve, log
    )
    wait_until(
        lambda: fresh in target.delivered_message_ids(),
        90, f"nothing forwarded after {name} came back", serve, log,
    )  # fmt: skip
    serving_in = time.monotonic() - killed_at

    after = child_pids(serve)
    assert after[name] == new
    others = [other for other in CHILDREN if other != name]
    assert {o: after[o] for o in others} == {o: before[o] for o in others}  # never stopped
    output = log.read_text()
    assert re.search(
        rf"{name} \(pid {old}\) exited after \S+ s: killed by SIGKILL \(code -9\)", output
    ), output[-3000:]
    assert f"{name} restarted (pid {new})" in output
    return restarted_in, serving_in


SETUP = """
from metrics_source.forwarding.destinations import destination_create
from metrics_source.ingest.sources import source_create
source, write_key = source_create(name="heal")
destination_create(name="receiver", kind="segment", url="{url}/", secret="wk", timeout_seconds=2)
print(write_key)
"""


def test_serve_restarts_each_child_that_dies_and_loses_nothing(
    tmp_path, throwaway_database, capsys
):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    password = f"chosen-{uuid.uuid4().hex}"
    env = serve_env(
        throwaway_database, tmp_path / "data", port, broker_offset=9, ADMIN_PASSWORD=password,
        FORWARDING_ALLOW_PRIVATE_NETWORKS="1",
        # A delivery task lost with the killed worker is enqueued again, and a batch it had
        # claimed is due again, within seconds rather than the production minute.
        FORWARDING_REQUEUE_SECONDS="5", FORWARDING_CLAIM_MARGIN_SECONDS="2",
    )  # fmt: skip
    log = tmp_path / "serve.log"
    heartbeat = heartbeat_path(tmp_path / "data" / "celerybeat-schedule")
    serve, children, traffic = None, [], None
    with receiver() as target:
        try:
            serve = start_serve(env, log)
            wait_until(lambda: healthy(base), 120, "no 200 from /healthz", serve, log)
            write_key = subprocess.run(
                [sys.executable, "manage.py", "shell", "-c", SETUP.format(url=target.url)],
                cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120, check=True,
            ).stdout.splitlines()[-1]  # fmt: skip
            wait_until(lambda: None not in child_pids(serve).values(), 60, "children", serve, log)
            traffic = Traffic(base, write_key)
            traffic.thread.start()
            wait_until(lambda: target.delivered_message_ids(), 90, "no forwarding", serve, log)

            for name in CHILDREN:
                restarted_in, serving_in = kill_and_recover(
                    serve, name, log=log, base=base, heartbeat=heartbeat, traffic=traffic,
                    target=target,
                )  # fmt: skip
                with capsys.disabled():
                    print(
                        f"\nkill -9 {name}: restarted (new pid) in {restarted_in:.1f} s, "
                        f"serving again (ingest to forwarding) in {serving_in:.1f} s"
                    )

            traffic.stopping.set()
            traffic.thread.join(30)
            acknowledged = traffic.ids()
            assert len(acknowledged) > 50
            # Nothing answered 200 is lost: each is stored once and reaches the receiver.
            assert stored_count(throwaway_database, acknowledged) == len(acknowledged)
            wait_until(
                lambda: acknowledged <= set(target.delivered_message_ids()),
                120, "acknowledged events missing at the receiver", serve, log,
            )  # fmt: skip
            with capsys.disabled():
                print(
                    f"{len(acknowledged)} events acknowledged, all stored and forwarded; "
                    f"{traffic.refused} requests refused while the web server restarted"
                )

            children = descendants(serve)
            serve.send_signal(signal.SIGINT)
            assert serve.wait(60) == 0, log.read_text()[-3000:]
            assert still_running(children, timeout=10) == []
            assert port_closed(port)
            output = log.read_text()
            assert "the password in ADMIN_PASSWORD" in output
            assert password not in output
        finally:
            if traffic is not None:
                traffic.stopping.set()
            end_all(serve, children or (descendants(serve) if serve else []))
