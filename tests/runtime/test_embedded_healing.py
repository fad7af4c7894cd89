"""`make run` heals: under the embedded wrapper running a real `manage.py serve` (gunicorn,
Celery worker, beat) with events arriving all along, a `kill -9` of the embedded Redis or of the
embedded PostgreSQL is followed by the server coming back on the same port and socket, by itself,
and the running processes carry on: /healthz is 200 again, a task enqueued after the restart
runs (events reach a local receiver through the forwarding tasks), ingest answers 503 with
Retry-After while PostgreSQL is down and 200 after, a page answers the 503 page meanwhile, and
no event that got a 200 is lost. A second wrapper shares the data directory, so two watchers
see each death and only one starts the server again.

The time from the kill to each recovery is printed (run with -s to see it), not asserted."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import psycopg
import pytest
import redis
import requests

from tests.forwarding_support import FAST_ENV, Receiver, receiver
from tests.gunicorn_support import free_port
from tests.runtime.test_embedded import (
    HOLDER,
    end,
    read_json_line,
    start_wrapper,
    stop_servers,
    wrapper_env,
)

pytestmark = pytest.mark.slow

PROJECT = Path(__file__).resolve().parents[2]
ADMIN_PASSWORD = "healing-admin-password-0123456789"

# Run through a second, short-lived wrapper (which adopts the servers): a source for the
# traffic and a webhook destination at the local receiver.
SETUP = (
    "import django, json, sys; django.setup(); "
    "from metrics_source.ingest.sources import source_create; "
    "from metrics_source.forwarding.destinations import destination_create; "
    "key = source_create(name='healing')[1]; "
    "destination_create(name='receiver', kind='webhook', url=sys.argv[1]); "
    "print(json.dumps({'write_key': key}))"
)


@dataclass
class Traffic:
    """Posts one event every 50 ms from a thread and keeps every answer."""

    base: str
    write_key: str
    answers: list[tuple[float, str, int, str | None]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self) -> None:
        auth = base64.b64encode(f"{self.write_key}:".encode()).decode()
        session = requests.Session()
        number = 0
        while not self.stop.is_set():
            number += 1
            message_id = f"heal-{number}"
            try:
                response = session.post(
                    f"{self.base}/v1/track",
                    json={"event": "Email Sent", "userId": "u-heal", "messageId": message_id},
                    headers={"Authorization": f"Basic {auth}"},
                    timeout=15,
                )
                status, retry_after = response.status_code, response.headers.get("Retry-After")
            except requests.RequestException:
                status, retry_after = 0, None
                session = requests.Session()
            with self.lock:
                self.answers.append((time.monotonic(), message_id, status, retry_after))
            time.sleep(0.05)

    def since(self, moment: float) -> list[tuple[float, str, int, str | None]]:
        with self.lock:
            return [answer for answer in self.answers if answer[0] >= moment]

    def acknowledged(self) -> list[str]:
        with self.lock:
            return [message_id for _, message_id, status, _ in self.answers if status == 200]


@dataclass
class Stack:
    data_dir: Path
    base: str
    logs: list[Path]
    target: Receiver
    traffic: Traffic
    wrappers: list

    def database(self) -> psycopg.Connection:
        address = json.loads((self.data_dir / "postgres.json").read_text())
        return psycopg.connect(
            host=address["socket_dir"],
            port=address["port"],
            user="postgres",
            dbname="metrics_source",
            connect_timeout=5,
        )

    def restart_lines(self, name: str) -> list[str]:
        """The restart lines for ``name`` in both wrappers' logs, once one is there (it comes
        after the server answers, so after the clients may have noticed) and a second one
        would have had time to follow."""

        def lines() -> list[str]:
            return [
                line
                for log in self.logs
                for line in log.read_text().splitlines()
                if line.startswith(f"embedded: {name} was gone; started again")
            ]

        wait_for(lines, 60, f"no restart line for {name}", self)
        time.sleep(3)
        return lines()

    def assert_running(self) -> None:
        for wrapper, log in zip(self.wrappers, self.logs, strict=True):
            assert wrapper.poll() is None, f"a wrapper exited:\n{log.read_text()[-3000:]}"


def wait_for(condition: Callable[[], object], timeout: float, what: str, stack: Stack):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stack.assert_running()
        result = condition()
        if result:
            return result
        time.sleep(0.05)
    logs = "\n".join(log.read_text()[-3000:] for log in stack.logs)
    raise AssertionError(f"{what} within {timeout} s\n{logs}")


def status_of(url: str, **options) -> int:
    try:
        return requests.get(url, timeout=5, allow_redirects=False, **options).status_code
    except requests.RequestException:
        return 0


@pytest.fixture(scope="module")
def stack():
    # Outside pytest's tmp root, which pytest makes 0700 (see test_embedded's data_dir).
    root = Path(tempfile.mkdtemp(prefix="ms-healing-"))
    data_dir = root / "data"
    port = free_port()
    env = wrapper_env(
        data_dir,
        **FAST_ENV,
        BIND=f"127.0.0.1:{port}",
        WEB_CONCURRENCY="2",
        CELERY_WORKER_CONCURRENCY="1",
        DEBUG="0",
        ADMIN_PASSWORD=ADMIN_PASSWORD,
        DJANGO_SETTINGS_MODULE="metrics_source.settings",
    )
    base = f"http://127.0.0.1:{port}"
    wrappers: list = []
    traffic = None
    with ExitStack() as cleanup:
        try:
            target = cleanup.enter_context(receiver())
            logs = [root / "serve.log", root / "holder.log"]
            # Its output to the log (not a pipe nobody reads once the test runs).
            serve = subprocess.Popen(
                [sys.executable, "-m", "metrics_source.runtime.embedded", "--",
                 sys.executable, "manage.py", "serve"],
                cwd=PROJECT, env=env, stdin=subprocess.DEVNULL, stdout=logs[0].open("w"),
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
            wrappers.append(serve)
            stack = Stack(data_dir, base, logs[:1], target, Traffic(base, ""), wrappers)
            wait_for(lambda: status_of(f"{base}/healthz") == 200, 300, "no healthy serve", stack)

            setup = start_wrapper(
                [sys.executable, "-c", SETUP, f"{target.url}/in"], env, root / "setup.log"
            )
            output, _ = setup.communicate(timeout=120)
            assert setup.returncode == 0, (root / "setup.log").read_text()
            write_key = json.loads(output.decode().strip().splitlines()[-1])["write_key"]

            # A second command on the same data directory: it adopts the servers and watches
            # them too.
            holder = start_wrapper([sys.executable, "-c", HOLDER], env, logs[1])
            wrappers.append(holder)
            read_json_line(holder, timeout=120)

            traffic = Traffic(base, write_key)
            threading.Thread(target=traffic.run, daemon=True).start()
            stack = Stack(data_dir, base, logs, target, traffic, wrappers)
            # Forwarding works before anything is killed.
            wait_for(lambda: target.delivered_message_ids(), 120, "nothing forwarded", stack)
            yield stack
        finally:
            if traffic is not None:
                traffic.stop.set()
            for wrapper in reversed(wrappers):
                if wrapper.poll() is None:
                    with suppress(ProcessLookupError):
                        wrapper.send_signal(signal.SIGTERM)
            for wrapper in reversed(wrappers):
                with suppress(Exception):
                    wrapper.wait(90)
                end(wrapper)
            stop_servers(data_dir)
            shutil.rmtree(root, ignore_errors=True)


def assert_nothing_acknowledged_is_lost(stack: Stack) -> None:
    """Every event that got a 200 is stored, once, and reaches the receiver."""
    acknowledged = stack.traffic.acknowledged()
    with stack.database() as connection:
        stored = connection.execute(
            "SELECT message_id FROM metrics_source_event WHERE message_id = ANY(%s)",
            [acknowledged],
        ).fetchall()
    assert sorted(row[0] for row in stored) == sorted(acknowledged)
    wait_for(
        lambda: set(acknowledged) <= set(stack.target.delivered_message_ids()),
        180,
        "acknowledged events not all forwarded",
        stack,
    )


def test_a_killed_redis_comes_back_on_its_port_and_the_tasks_run_again(stack):
    folder = stack.data_dir / "redis"
    state = json.loads((folder / "embedded.json").read_text())
    killed = int((folder / "redis.pid").read_text())
    assert psutil.Process(killed).name().startswith("redis-server")

    os.kill(killed, signal.SIGKILL)
    killed_at = time.monotonic()

    def answers_on_the_same_port() -> bool:
        with suppress(redis.RedisError, OSError):
            client = redis.Redis(
                host="127.0.0.1", port=state["port"], password=state["password"], socket_timeout=1
            )
            with client:
                return bool(client.ping())
        return False

    wait_for(answers_on_the_same_port, 60, "no Redis on the same port again", stack)
    back_at = time.monotonic()
    assert int((folder / "redis.pid").read_text()) != killed
    wait_for(lambda: status_of(f"{stack.base}/healthz") == 200, 60, "/healthz not 200", stack)
    healthy_at = time.monotonic()

    # An event acknowledged after the restart reaches the receiver: the sweep and the delivery
    # task that carry it were enqueued on the new Redis and run by the same worker.
    def acknowledged_after_restart() -> list[str]:
        return [m for _, m, status, _ in stack.traffic.since(healthy_at) if status == 200]

    first = wait_for(acknowledged_after_restart, 60, "no event acknowledged", stack)[0]
    wait_for(
        lambda: first in stack.target.delivered_message_ids(),
        120,
        "an event acknowledged after the restart was not forwarded",
        stack,
    )
    forwarded_at = time.monotonic()

    lines = stack.restart_lines("Redis")
    assert len(lines) == 1, lines  # two watchers, one restart
    assert f"127.0.0.1:{state['port']}" in lines[0]
    assert state["password"] not in "".join(log.read_text() for log in stack.logs)
    print(
        f"\nRedis kill -9 -> answering on its port {back_at - killed_at:.1f} s, "
        f"/healthz 200 {healthy_at - killed_at:.1f} s, "
        f"a new event forwarded {forwarded_at - killed_at:.1f} s"
    )
    assert_nothing_acknowledged_is_lost(stack)


def test_a_killed_postgresql_comes_back_and_ingest_and_pages_recover(stack):
    session = requests.Session()
    login = session.get(f"{stack.base}/admin/login/", timeout=10)
    assert login.status_code == 200
    signed_in = session.post(
        f"{stack.base}/admin/login/?next=/admin/",
        data={
            "username": "admin",
            "password": ADMIN_PASSWORD,
            "next": "/admin/",
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
        headers={"Referer": f"{stack.base}/admin/login/"},
        timeout=10,
    )
    assert signed_in.url == f"{stack.base}/admin/", signed_in.text[:500]
    cookies = session.cookies.get_dict()

    # The admin page asked over and over from the kill on, to catch it while it is down.
    pages: list[tuple[float, int, str, str | None]] = []
    stop = threading.Event()

    def ask_pages() -> None:
        while not stop.is_set():
            with suppress(requests.RequestException):
                page = requests.get(
                    f"{stack.base}/admin/", cookies=cookies, timeout=10, allow_redirects=False
                )
                pages.append(
                    (time.monotonic(), page.status_code, page.text, page.headers.get("Retry-After"))
                )
            time.sleep(0.02)

    postmaster = int((stack.data_dir / "postgres" / "postmaster.pid").read_text().split()[0])
    asking = threading.Thread(target=ask_pages, daemon=True)
    asking.start()
    try:
        os.kill(postmaster, signal.SIGKILL)
        killed_at = time.monotonic()

        def ingest_refused() -> list:
            return [a for a in stack.traffic.since(killed_at) if a[2] == 503]

        def ingest_back() -> list:
            refused = ingest_refused()
            return refused and [a for a in stack.traffic.since(refused[0][0]) if a[2] == 200]

        ingest_ok_at = wait_for(ingest_back, 120, "ingest not 200 again", stack)[0][0]

        def page_back() -> list:
            return [p for p in pages if p[0] > killed_at and p[1] == 200]

        page_ok_at = wait_for(page_back, 60, "the admin page not 200 again", stack)[0][0]
    finally:
        stop.set()
        asking.join(15)

    refused = ingest_refused()
    assert refused, "no ingest request saw PostgreSQL down"
    assert all(retry_after and retry_after.isdigit() for *_, retry_after in refused)
    answered_while_down = {status for at, status, _, _ in pages if killed_at < at < page_ok_at}
    assert answered_while_down <= {200, 503}, answered_while_down  # never a 500
    down_pages = [p for p in pages if killed_at < p[0] < page_ok_at and p[1] == 503]
    assert down_pages, "no page request saw PostgreSQL down"
    for _, _, text, retry_after in down_pages:
        assert "The database is unavailable" in text
        assert "Traceback" not in text
        assert retry_after and retry_after.isdigit()

    lines = stack.restart_lines("PostgreSQL")
    assert len(lines) == 1, lines  # two watchers, one restart
    address = json.loads((stack.data_dir / "postgres.json").read_text())
    assert f"{address['socket_dir']}/.s.PGSQL.{address['port']}" in lines[0]
    assert int((stack.data_dir / "postgres" / "postmaster.pid").read_text().split()[0]) != (
        postmaster
    )
    print(
        f"\nPostgreSQL kill -9 -> ingest 200 again {ingest_ok_at - killed_at:.1f} s "
        f"({len(refused)} requests answered 503 meanwhile), "
        f"admin page 200 again {page_ok_at - killed_at:.1f} s ({len(down_pages)} 503 pages)"
    )
    assert_nothing_acknowledged_is_lost(stack)
