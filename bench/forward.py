"""Forwarding throughput to a local receiver, beside the receiver's own ceiling.

    .venv/bin/python bench/forward.py [--events 30000] [--singles 3000] [--batch-size 100]

Runs on the servers DATABASE_URL (it creates and drops ``<name>_fwdbench``) and REDIS_URL
name, or else, as `make bench-forward`, on the data directory's embedded ones. It starts an
HTTP receiver in its own process, then measures:

* ceiling: the receiver driven directly by one client process with keep-alive, posting the
  same bodies the forwarder will send (batches, then single events): what the receiver and
  loopback allow, one request at a time, as one destination is sent to;
* forwarded: events stored through the ingest service, a Celery worker (prefork, 2 processes,
  beat embedded) fans them out and delivers them; timed from the receiver's first request to
  its last, so fan-out after the first sweep and every ledger write are included.

Prints events/s (batched) and requests/s (one event per request) and the ratio to the
ceiling. Never part of the test run.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import orjson
from benchdb import fresh_database, under_local_servers

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


# --- the receiver (own process) -------------------------------------------------------------


def serve(port_out, events, requests, first, last) -> None:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes: with Nagle on, the body waits for the
        # client's delayed ACK (about 40 ms per request).
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            data = orjson.loads(body)
            count = (
                len(data["batch"])
                if isinstance(data, dict) and "batch" in data
                else (len(data) if isinstance(data, list) else 1)
            )
            now = time.time()
            with events.get_lock():
                if first.value == 0:
                    first.value = now
                events.value += count
                requests.value += 1
                last.value = now
            self.send_response(200)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port_out.value = server.server_address[1]
    server.serve_forever()


class Receiver:
    def __init__(self) -> None:
        self.port = mp.Value("i", 0)
        self.events = mp.Value("q", 0)
        self.requests = mp.Value("q", 0)
        self.first = mp.Value("d", 0.0)
        self.last = mp.Value("d", 0.0)
        self.process = mp.Process(
            target=serve,
            args=(self.port, self.events, self.requests, self.first, self.last),
            daemon=True,
        )
        self.process.start()
        while self.port.value == 0:
            time.sleep(0.01)

    def reset(self) -> None:
        with self.events.get_lock():
            self.events.value = self.requests.value = 0
            self.first.value = self.last.value = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port.value}"


def ceiling(receiver: Receiver, bodies: list[bytes], events_per_body: int) -> float:
    """Events/s the receiver takes from one keep-alive client posting these bodies."""
    import urllib3

    receiver.reset()
    pool = urllib3.HTTPConnectionPool("127.0.0.1", receiver.port.value, maxsize=1)
    started = time.perf_counter()
    for body in bodies:
        pool.request("POST", "/", body=body, headers={"content-type": "application/json"})
    return len(bodies) * events_per_body / (time.perf_counter() - started)


# --- forwarding -----------------------------------------------------------------------------


def calls(count: int, prefix: str) -> list[dict]:
    from tests.payloads import track_call

    start = datetime.now(UTC) - timedelta(days=1)
    return [
        track_call(
            "Email Delivered",
            message_id=f"{prefix}-{n}",
            user_id=f"user-{n % 5000}",
            timestamp=(start + timedelta(milliseconds=n)).isoformat(),
        )
        for n in range(count)
    ]


def forward(receiver: Receiver, env: dict, *, count: int, batch_size: int, name: str) -> float:
    """Events/s from the first to the last request the receiver saw."""
    from metrics_source.forwarding.destinations import destination_create
    from metrics_source.ingest.service import events_ingest_calls

    receiver.reset()
    destination = destination_create(
        name=name, kind="webhook", url=receiver.url, batch_size=batch_size
    )
    events = calls(count, name)
    for i in range(0, count, 1000):
        events_ingest_calls(source=None, calls=events[i : i + 1000])
    queue = f"fwdbench-{uuid.uuid4().hex[:8]}"
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "metrics_source", "worker", "-B",
         "-s", f"/tmp/{queue}-beat", "--pool", "prefork", "--concurrency", "2",
         "--loglevel", "WARNING", "-Q", queue],
        cwd=ROOT, env=env | {"CELERY_QUEUE": queue}, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 600
        while receiver.events.value < count and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(30)
    # Later runs measure their own destination only.
    destination.enabled = False
    destination.save(update_fields=["enabled"])
    received = receiver.events.value
    if received < count:
        raise SystemExit(f"only {received} of {count} events arrived")
    return count / (receiver.last.value - receiver.first.value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=30_000, help="events for the batch run")
    parser.add_argument("--singles", type=int, default=3_000, help="events sent one by one")
    parser.add_argument("--batch-size", type=int, default=100)
    args = parser.parse_args()
    under_local_servers()

    database = fresh_database("fwdbench", make_target="bench-forward")
    bench_url = database.url
    env = dict(
        os.environ,
        DATABASE_URL=bench_url,
        DJANGO_SETTINGS_MODULE="metrics_source.settings",
        FORWARDING_ALLOW_PRIVATE_NETWORKS="1",
        FORWARDING_SWEEP_SECONDS="0.2",
    )
    env.setdefault("SECRET_KEY", "bench-" + uuid.uuid4().hex + uuid.uuid4().hex)
    os.environ.update(env)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)

    import django

    django.setup()
    receiver = Receiver()
    try:
        sample = [orjson.dumps(c) for c in calls(args.batch_size, "sample")]
        size = sum(map(len, sample)) / len(sample)
        batch_body = b"[" + b",".join(sample) + b"]"
        print(f"machine: {os.cpu_count()} cores; events of about {size:.0f} bytes")
        batch_ceiling = ceiling(receiver, [batch_body] * 300, args.batch_size)
        single_ceiling = ceiling(receiver, sample * 30, 1)
        batched = forward(
            receiver, env, count=args.events, batch_size=args.batch_size, name="batched"
        )
        singles = forward(receiver, env, count=args.singles, batch_size=1, name="singles")
        print(f"receiver ceiling, {args.batch_size} events per request: "
              f"{batch_ceiling:10,.0f} events/s")  # fmt: skip
        print(f"forwarded,        {args.batch_size} events per request: {batched:10,.0f} "
              f"events/s  (ratio {batched / batch_ceiling:.2f})")  # fmt: skip
        print(f"receiver ceiling, 1 event per request:    {single_ceiling:10,.0f} requests/s")
        print(f"forwarded,        1 event per request:    {singles:10,.0f} requests/s  "
              f"(ratio {singles / single_ceiling:.2f})")  # fmt: skip
    finally:
        receiver.process.terminate()
        from django.db import connections

        connections.close_all()
        database.drop()


if __name__ == "__main__":
    main()
