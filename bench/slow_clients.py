"""Slow clients and ingest, through the web front (as `make run` and the container serve) and
through a bare gunicorn (how they served before), measured in the same run.

    .venv/bin/python bench/slow_clients.py [--events 30000] [--workers 3] [--slow 20]

Runs on the servers DATABASE_URL and REDIS_URL name, or else, as `make bench-slow-clients`,
on the data directory's embedded ones, in a database of its own (created and dropped). For
each way of serving it measures, one after the other so they never share the cores:

* ``/v1/batch`` throughput, 100 events per request from 3 client processes, with the web
  side's CPU per event (every process of the server: front, gunicorn and its workers);
* ``/healthz`` answer times (p50, p95, max of 100 requests, after 10 unmeasured) with no
  slow client, then with ``--slow`` clients that each send a request head and then one body
  byte a second.

It prints the front's figures as ratios of the bare gunicorn's: ingest events/s and CPU per
event (what the front costs), and ``/healthz`` p95 with slow clients against without (what
they cost). A bare sync worker held by slow clients does not answer at all: those requests
are counted as unanswered within 5 s. Never part of the test run.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from benchdb import fresh_database, migrated_env, source_auth, under_local_servers
from ingest import ROOT, _cpu_seconds, drive, free_port, make_event

HEALTH_REQUESTS = 100
UNANSWERED_AFTER = 5.0  # seconds


def _descendants(pid: int) -> list[int]:
    """Every process under ``pid`` (the front, gunicorn's master and its workers)."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        found += [int(child) for child in children]
        queue += [int(child) for child in children]
    return found


def _wait_healthy(port: int, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert server.poll() is None, "the server exited"
        status, _ = _health(port, timeout=2)
        if status == 200:
            return
        time.sleep(0.2)
    raise SystemExit("the server did not become healthy within 60 s")


@contextmanager
def serving(env: dict, port: int, workers: int, *, front: bool) -> Iterator[subprocess.Popen]:
    if front:
        command = [
            sys.executable,
            "manage.py",
            "serve",
            "--web-only",
            "--bind",
            f"127.0.0.1:{port}",
        ]
        env = {**env, "WEB_CONCURRENCY": str(workers)}
    else:
        command = [
            sys.executable, "-m", "gunicorn", "metrics_source.wsgi:application",
            "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
            "--log-level", "warning", "--no-control-socket",
        ]  # fmt: skip
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    try:
        _wait_healthy(port, server)
        yield server
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=40)
        except subprocess.TimeoutExpired:
            server.kill()


def _health(port: int, *, timeout: float) -> tuple[int | None, float]:
    """One GET /healthz on a new connection: (status or None, seconds)."""
    started = time.perf_counter()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            head = sock.recv(64)
        status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else None
    except OSError:
        status = None
    return status, time.perf_counter() - started


@contextmanager
def slow_clients(port: int, count: int) -> Iterator[None]:
    stop = threading.Event()
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(
            b"POST /v1/batch HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
        )
        sockets.append(sock)

    def drip() -> None:
        while not stop.wait(1):
            for sock in sockets:
                with suppress(OSError):
                    sock.sendall(b" ")

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    time.sleep(1.5)  # every slow client has been accepted and is dripping
    try:
        yield
    finally:
        stop.set()
        thread.join(5)
        for sock in sockets:
            sock.close()


def health_times(port: int, requests: int) -> tuple[list[float], int]:
    """Seconds of each answered /healthz, and how many got no answer within the bound."""
    answered, unanswered = [], 0
    for _ in range(requests):
        status, seconds = _health(port, timeout=UNANSWERED_AFTER)
        if status == 200:
            answered.append(seconds)
        else:
            unanswered += 1
    return answered, unanswered


def describe(times: list[float], unanswered: int) -> str:
    if not times:
        return f"no answer within {UNANSWERED_AFTER:.0f} s ({unanswered} requests)"
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    text = (
        f"p50 {statistics.median(ordered) * 1000:6.1f} ms, p95 {p95 * 1000:6.1f} ms, "
        f"max {ordered[-1] * 1000:6.1f} ms"
    )
    return text + (
        f", {unanswered} unanswered within {UNANSWERED_AFTER:.0f} s" if unanswered else ""
    )


def p95(times: list[float]) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


def measure(
    label: str,
    env: dict,
    workers: int,
    slow: int,
    auth: str,
    batches: Callable[[], list[bytes]],
    *,
    front: bool,
) -> dict:
    port = free_port()
    with serving(env, port, workers, front=front) as server:
        drive(port, "/v1/batch", auth, batches()[:6], 3)  # warm every worker
        bodies = batches()
        pids = [server.pid, *_descendants(server.pid)]
        cpu_before = _cpu_seconds(pids)
        driven = drive(port, "/v1/batch", auth, bodies, 3)
        cpu = _cpu_seconds(pids) - cpu_before
        events = len(bodies) * 100
        rate = events / driven.seconds
        print(f"{label}: /v1/batch {rate:10,.0f} events/s ({driven.failed} failed requests), "
              f"web side CPU {cpu / events * 1e6:,.1f} us per event")  # fmt: skip
        health_times(port, 10)  # warm: the first answers of each worker set up its connections
        quiet = health_times(port, HEALTH_REQUESTS)
        print(f"{label}: /healthz, no slow client:  {describe(*quiet)}")
        # A starved bare worker answers nothing: a few requests tell it, 5 s each.
        with slow_clients(port, slow):
            loaded = health_times(port, HEALTH_REQUESTS if front else 4)
        print(f"{label}: /healthz, {slow} slow clients: {describe(*loaded)}")
    return {"rate": rate, "cpu": cpu / events, "quiet": quiet, "loaded": loaded}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=30_000, help="events per ingest run")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn sync workers")
    parser.add_argument("--slow", type=int, default=20, help="slow clients")
    args = parser.parse_args()
    under_local_servers()

    database = fresh_database("bench_slow", make_target="bench-slow-clients")
    env = {**migrated_env(database), "DEBUG": "0"}
    auth = source_auth(env)
    random.seed(11)
    start = datetime.now(UTC) - timedelta(days=1)
    counter = iter(range(10**9))

    def batches() -> list[bytes]:
        """Fresh events each call: every run stores new rows, none is a duplicate."""
        return [
            orjson.dumps({"batch": [make_event(next(counter), start) for _ in range(100)]})
            for _ in range(args.events // 100)
        ]

    print(f"machine: {os.cpu_count()} cores; {args.workers} gunicorn workers; "
          f"{args.events:,} events per ingest run")  # fmt: skip
    try:
        bare = measure("bare gunicorn", env, args.workers, args.slow, auth, batches, front=False)
        front = measure("web front    ", env, args.workers, args.slow, auth, batches, front=True)
    finally:
        database.drop()
    print(f"ratio front/bare, /v1/batch events/s: {front['rate'] / bare['rate']:.2f}; "
          f"web side CPU per event: {front['cpu'] / bare['cpu']:.2f}")  # fmt: skip
    quiet_p95, loaded_p95 = p95(front["quiet"][0]), p95(front["loaded"][0] or [float("inf")])
    print(f"ratio front /healthz p95 with {args.slow} slow clients / without: "
          f"{loaded_p95 / quiet_p95:.2f} ({loaded_p95 * 1000:.1f} ms against "
          f"{quiet_p95 * 1000:.1f} ms); bare gunicorn: {bare['loaded'][1]} of "
          f"{bare['loaded'][1] + len(bare['loaded'][0])} unanswered")  # fmt: skip


if __name__ == "__main__":
    main()
