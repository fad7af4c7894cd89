"""Real parts for the forwarding tests: HTTP receivers on loopback, Celery worker processes
on the run's Redis and test database, a Standard Webhooks verifier written from the spec."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from metrics_source.ingest.service import events_ingest_calls
from tests.payloads import track_call

ROOT = Path(__file__).resolve().parent.parent


# --- Standard Webhooks, receiver side (standardwebhooks.com spec) ---------------------------


class InvalidSignature(Exception):
    pass


def verify_standard_webhook(secret: str, headers: dict[str, str], body: bytes) -> None:
    """Verify as the spec says a receiver must: the whsec_ secret's base64 part is the HMAC
    key; the signed content is ``id.timestamp.body``; any one of the space-separated ``v1,``
    signatures may match; the timestamp is within 5 minutes."""
    msg_id = headers["webhook-id"]
    timestamp = headers["webhook-timestamp"]
    if abs(time.time() - int(timestamp)) > 300:
        raise InvalidSignature("timestamp outside the tolerance")
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = base64.b64encode(
        hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    ).decode()
    for candidate in headers["webhook-signature"].split(" "):
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return
    raise InvalidSignature("no signature matches")


# --- HTTP receivers ------------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.time() when the request arrived
    status: int = 0

    def events(self) -> list[dict[str, Any]]:
        data = orjson.loads(self.body)
        if isinstance(data, dict) and "batch" in data:
            return data["batch"]
        return data if isinstance(data, list) else [data]


Answer = tuple[int, dict[str, str], bytes]


@dataclass
class Receiver:
    """A threaded HTTP server; ``behaviour(received, index)`` answers each request."""

    behaviour: Callable[[Received, int], Answer] = lambda received, index: (200, {}, b"{}")
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    in_flight: dict[str, int] = field(default_factory=dict)
    overlaps: list[str] = field(default_factory=list)
    url: str = ""

    def delivered_message_ids(self) -> list[str]:
        """messageIds of every event in a request answered 2xx (repeats included)."""
        with self.lock:
            done = [r for r in self.requests if 200 <= r.status < 300]
        return [event["messageId"] for r in done for event in r.events()]


@contextmanager
def receiver(behaviour: Callable[[Received, int], Answer] | None = None) -> Iterator[Receiver]:
    state = Receiver() if behaviour is None else Receiver(behaviour=behaviour)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes: with Nagle on, the body waits for the
        # client's delayed ACK (about 40 ms per request).
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            received = Received(
                self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.time()
            )
            ids = [event.get("messageId", "") for event in received.events()]
            with state.lock:
                index = len(state.requests)
                state.requests.append(received)
                for message_id in ids:
                    if state.in_flight.get(message_id):
                        state.overlaps.append(message_id)
                    state.in_flight[message_id] = state.in_flight.get(message_id, 0) + 1
            try:
                status, headers, answer = state.behaviour(received, index)
            finally:
                with state.lock:
                    for message_id in ids:
                        state.in_flight[message_id] -= 1
            received.status = status
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            with suppress(OSError):
                self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


# --- Celery workers ------------------------------------------------------------------------

FAST_ENV = {
    "FORWARDING_SWEEP_SECONDS": "0.3",
    "FORWARDING_RETRY_SCHEDULE": "0.2,0.2,0.2,0.2,0.2",
    "FORWARDING_REQUEUE_SECONDS": "2",
    "FORWARDING_TASK_SECONDS": "1",
    "FORWARDING_CLAIM_MARGIN_SECONDS": "1",
    "FORWARDING_ALLOW_PRIVATE_NETWORKS": "1",
}


def worker_database_url() -> str:
    from django.db import connection

    name = connection.settings_dict["NAME"]
    return urlsplit(os.environ["DATABASE_URL"])._replace(path=f"/{name}").geturl()


@dataclass
class Worker:
    process: subprocess.Popen
    log: Path

    def kill(self) -> None:
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            # The main process only: it stops its pool itself (warm shutdown).
            with suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


@contextmanager
def celery_worker(
    tmp_path: Path, queue: str, *, beat: bool = True, concurrency: int = 2, **env: str
) -> Iterator[Worker]:
    from django.conf import settings

    name = f"w{uuid.uuid4().hex[:8]}"
    log = tmp_path / f"{name}.log"
    argv = [
        sys.executable, "-m", "celery", "-A", "metrics_source", "worker",
        "--pool", "prefork", "--concurrency", str(concurrency), "--loglevel", "INFO",
        "-Q", queue, "-n", f"{name}@%h", "--without-gossip", "--without-mingle",
        "--without-heartbeat",
    ]  # fmt: skip
    if beat:
        argv += ["-B", "-s", str(tmp_path / f"{name}-beat-schedule")]
    full_env = os.environ | FAST_ENV | env
    full_env |= {
        "DATABASE_URL": worker_database_url(),
        "REDIS_URL": settings.CELERY_BROKER_URL,
        "CELERY_QUEUE": queue,
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv, cwd=ROOT, env=full_env, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    worker = Worker(process, log)
    try:
        yield worker
    finally:
        worker.stop()
    # A task that raised (a deadlock, a bug) would only show as a delay: fail the test on it.
    # Lost pool processes at shutdown are the stop itself.
    errors = [
        line
        for line in log.read_text(errors="replace").splitlines()
        if "ERROR/" in line and "WorkerLostError" not in line
    ]
    assert not errors, "\n".join(errors)


def wait_for(condition: Callable[[], Any], *, timeout: float = 60, what: str = "") -> Any:
    """Poll until ``condition()`` is truthy; the timeout is a ceiling for a broken run, never
    a measurement."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(0.1)


# --- events --------------------------------------------------------------------------------


def store_events(count: int, *, prefix: str | None = None, start: datetime | None = None,
                 **extra: Any) -> list[str]:  # fmt: skip
    """Store ``count`` events through the ingest service; returns their messageIds."""
    prefix = prefix or uuid.uuid4().hex[:8]
    start = start or datetime(2024, 5, 1, tzinfo=UTC)
    calls = [
        track_call(
            "Email Delivered",
            message_id=f"{prefix}-{i:05d}",
            timestamp=(start + timedelta(seconds=i)).isoformat(),
            **extra,
        )
        for i in range(count)
    ]
    result = events_ingest_calls(source=None, calls=calls)
    assert result.stored == count, result.rejected
    return [call["messageId"] for call in calls]
