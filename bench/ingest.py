"""Ingest throughput through the running server, beside a PostgreSQL COPY baseline.

    .venv/bin/python bench/ingest.py [--events 60000] [--track-events 8000] [--workers 3]
        [--clients 3]

Runs on the servers DATABASE_URL (one the bench may create a database on; it creates and
drops ``<name>_bench``) and REDIS_URL name, or else, as `make bench`, on the data directory's
embedded ones. It starts gunicorn on a free loopback port against the bench database, then
measures, on the same generated events (about 600 bytes each):

* baseline: ``COPY`` of the events into a bare table with a unique ``message_id``;
* reference: ``COPY`` of the same events, mapped by the ingest service, into a copy of the
  events table with its indexes (what these rows cost PostgreSQL at the least);
* ``/v1/batch`` with 100 events per request, from several client processes;
* ``/v1/track`` with one event per request, from several client processes.

It prints events/s for each, the ratio to the baseline, the CPU its own clients spent per
request (they share the machine's cores with the server), and the server side's CPU per event
or request, from ``/proc``: the gunicorn workers, the bench database's PostgreSQL backends
(when PostgreSQL runs on this machine; with the rollup on, its backend too) and the rollup's own
process. CPU per event drifts less than throughput on a machine whose speed drifts.
``--worker-class`` and ``--threads`` try other gunicorn workers (the clients keep connections
open where the server does). Never part of the test run.

The dashboard's rollup runs beside the server throughout (as the Celery worker would run it),
competing for the same cores, so the figures include the cost of keeping the summaries
current; ``--no-rollup`` leaves it out, and the bench reports how long after the last request
the summaries had caught up.

One file on purpose (over 400 lines): a benchmark is read and run as one script.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import multiprocessing as mp
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import psycopg
from benchdb import fresh_database, migrated_env, psycopg_url, source_auth, under_local_servers

ROOT = Path(__file__).resolve().parent.parent
CHANNEL_EVENTS = [
    ("Email Sent", "email"),
    ("Email Delivered", "email"),
    ("Email Opened", "email"),
    ("Email Link Clicked", "email"),
    ("Push Sent", "push"),
    ("Push Opened", "push"),
    ("SMS Delivered", "sms"),
    ("In-App Opened", "in_app"),
]


# Deliveries of several events (--events-per-delivery): each channel's steps, in order.
FUNNELS = [
    ("email", ["Email Sent", "Email Delivered", "Email Opened", "Email Link Clicked"]),
    ("push", ["Push Sent", "Push Delivered", "Push Opened", "Push Link Clicked"]),
    ("sms", ["SMS Sent", "SMS Delivered", "SMS Link Clicked", "SMS Converted"]),
    ("in_app", ["In-App Sent", "In-App Opened", "In-App Clicked", "In-App Converted"]),
]
# An action's channel decides its events: two of that channel's, alternately.
ACTION_EVENTS = [
    [("Email Sent", "email"), ("Email Opened", "email")],
    [("Email Delivered", "email"), ("Email Link Clicked", "email")],
    [("Push Sent", "push"), ("Push Opened", "push")],
    [("SMS Delivered", "sms"), ("SMS Sent", "sms")],
    [("In-App Opened", "in_app"), ("In-App Sent", "in_app")],
]
RUN_TAG = uuid.uuid4().hex[:8]


# The default bench's 400 actions: as in Customer.io, each is one message of one campaign, so
# it has one channel; campaign c owns actions c, c + 40, c + 80, ...
ACTIONS = 400
CAMPAIGNS = 40


def make_event(n: int, start: datetime, per_delivery: int = 1, random_pairs: bool = False) -> dict:
    """Event n of the bench. With one event per delivery (the default, the worst case for the
    dashboard's summaries) each event has its own delivery id, of a random action of 400 (and
    that action's campaign and channel). ``random_pairs`` gives each event an independent random
    campaign, action and channel instead: 16,000 campaign-action pairs that no workspace has,
    which multiplies the per-action rows the rollup writes. With more events per delivery,
    consecutive events are the steps of one delivery, whose action is one of its campaign's
    three."""
    if per_delivery > 1:
        return _delivery_step(n, start, per_delivery)
    if random_pairs:
        name, channel = CHANNEL_EVENTS[n % len(CHANNEL_EVENTS)]
        campaign, action = random.randint(1, CAMPAIGNS), random.randint(1, ACTIONS)
    else:
        action = random.randint(1, ACTIONS)
        campaign = (action - 1) % CAMPAIGNS + 1
        name, channel = ACTION_EVENTS[action % len(ACTION_EVENTS)][n % 2]
    user = f"user-{random.randint(1, 50_000)}"
    event = {
        "type": "track",
        "event": name,
        "userId": user,
        "messageId": f"bench-{uuid.uuid4()}",
        "timestamp": (start + timedelta(milliseconds=n)).isoformat().replace("+00:00", "Z"),
        "context": {
            "traits": {"email": f"{user}@example.com"},
            "library": {"name": "analytics-python", "version": "2.3.0"},
        },
        "properties": {
            "customer_id": user,
            "delivery_id": base64.urlsafe_b64encode(os.urandom(18)).decode(),
            "campaign_id": campaign,
            "action_id": action,
            "journey_id": "01HZX" + uuid.uuid4().hex[:21].upper(),
            "recipient": f"{user}@example.com",
            "subject": "Your weekly summary is ready to read",
            "userId": user,
        },
    }
    if channel == "push":
        device = {"device_id": uuid.uuid4().hex, "device_platform": "ios"}
        event["properties"]["recipients"] = [device]
    return event


def _delivery_step(n: int, start: datetime, per_delivery: int) -> dict:
    delivery, step = divmod(n, per_delivery)
    event = make_event(delivery * per_delivery, start)  # the delivery's shared fields
    channel, steps = FUNNELS[delivery % len(FUNNELS)]
    event["event"] = steps[step % len(steps)]
    event["timestamp"] = (start + timedelta(milliseconds=n)).isoformat().replace("+00:00", "Z")
    event["properties"]["delivery_id"] = f"bench-{RUN_TAG}-{delivery}"
    # As in a real workspace, each action is a step of one campaign (a few per campaign).
    campaign = event["properties"]["campaign_id"]
    event["properties"]["action_id"] = campaign * 10 + delivery % 3
    event["properties"].pop("recipients", None)
    if channel == "push":
        event["properties"]["recipients"] = [{"device_id": str(delivery), "device_platform": "ios"}]
    return event


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------------------------------
# Baseline
# ---------------------------------------------------------------------------------------


def copy_baseline(db_url: str, events: list[dict]) -> float:
    lines = [orjson.dumps(e).decode() for e in events]
    with psycopg.connect(psycopg_url(db_url), autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_copy_baseline")
        conn.execute(
            "CREATE TABLE bench_copy_baseline"
            " (message_id text NOT NULL UNIQUE, event jsonb NOT NULL)"
        )
        started = time.perf_counter()
        # One COPY stream in one transaction: the fastest way PostgreSQL loads rows.
        copy_sql = "COPY bench_copy_baseline (message_id, event) FROM STDIN"
        with conn.transaction(), conn.cursor() as cur, cur.copy(copy_sql) as copy:
            for event, line in zip(events, lines, strict=True):
                copy.write_row((event["messageId"], line))
        elapsed = time.perf_counter() - started
        conn.execute("DROP TABLE bench_copy_baseline")
    return len(events) / elapsed


def mapped_rows(db_url: str, events: list[dict]) -> tuple[tuple[str, ...], list[tuple]]:
    """The events as the ingest service maps them: the columns it writes and each row's
    values (Django is set up in this process against ``db_url`` to use its mapping)."""
    os.environ.update(DATABASE_URL=db_url, DJANGO_SETTINGS_MODULE="metrics_source.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from metrics_source.ingest.mapping import row_from_call
    from metrics_source.ingest.service import STORED_COLUMNS, row_values
    from metrics_source.models import Origin

    now = datetime.now(UTC)
    rows = [
        row_values(
            row_from_call(event, received_at=now, raw_json=orjson.dumps(event).decode())[1],
            source=None,
            origin=Origin.TRACK,
        )
        for event in events
    ]
    return STORED_COLUMNS, rows


def copy_stream(conn: psycopg.Connection, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """One COPY of ``rows`` into ``bench_copy_events``, in one transaction."""
    copy_sql = f"COPY bench_copy_events ({', '.join(columns)}) FROM STDIN"
    with conn.transaction(), conn.cursor() as cur, cur.copy(copy_sql) as copy:
        for row in rows:
            copy.write_row(row)


def copy_rows(db_url: str, table_sql: str, columns: tuple[str, ...], rows: list[tuple]) -> float:
    """Rows per second of one COPY stream of ``rows`` into ``bench_copy_events``, created by
    ``table_sql`` (then dropped)."""
    with psycopg.connect(psycopg_url(db_url), autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_copy_events")
        conn.execute(table_sql)
        started = time.perf_counter()
        copy_stream(conn, columns, rows)
        elapsed = time.perf_counter() - started
        conn.execute("DROP TABLE bench_copy_events")
    return len(rows) / elapsed


# A copy of the events table: its columns, defaults, identity and indexes.
EVENTS_TABLE_COPY = "CREATE TABLE bench_copy_events (LIKE metrics_source_event INCLUDING ALL)"


def copy_events_table(db_url: str, events: list[dict]) -> float:
    """COPY of the same events, mapped by the ingest service, into a copy of the events table
    (its columns, defaults and indexes): what storing these rows costs PostgreSQL at the
    least, with no HTTP, parsing or mapping. No endpoint that keeps this table's columns and
    indexes can beat it by much, so it shows how much of the gap to the bare baseline is the
    table's and how much is the server's (``bench/table_copy.py`` splits it by index)."""
    columns, rows = mapped_rows(db_url, events)
    return copy_rows(db_url, EVENTS_TABLE_COPY, columns, rows)


# ---------------------------------------------------------------------------------------
# Clients
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Driven:
    seconds: float
    failed: int
    client_cpu_per_request: float  # seconds of the clients' CPU per request


def _request_bytes(port: int, path: str, auth: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nAuthorization: {auth}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _read_answer(sock: socket.socket) -> tuple[bytes, bool]:
    """One HTTP/1.1 answer: (its status line, whether the connection stays open)."""
    data = bytearray()
    while (split := data.find(b"\r\n\r\n")) < 0:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection mid-answer")
        data += chunk
    head = bytes(data[:split]).lower()
    status = bytes(data[: data.find(b"\r\n")])
    length = None
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name == b"content-length":
            length = int(value)
    if length is None:  # no length given (chunked, say): read to the end, then reconnect
        while sock.recv(65536):
            pass
        return status, False
    missing = split + 4 + length - len(data)
    while missing > 0:
        chunk = sock.recv(max(missing, 65536))
        if not chunk:
            raise ConnectionError("the server closed the connection mid-answer")
        missing -= len(chunk)
    return status, b"connection: close" not in head


def _client(port: int, requests: list[bytes], barrier, results) -> None:
    """Send each request, already in wire form, and read its answer.

    A lean client on purpose: it shares the two cores with the server it measures, and
    http.client spent 0.6 to 0.7 ms of CPU per request composing and parsing what is here
    prepared before the clock starts. It keeps the connection open when the server does, as
    SDKs do; gunicorn's sync worker closes it after each answer, so there each request has its
    own connection, as with any client of it.
    """
    errors = 0
    sock = None
    barrier.wait()
    cpu_started = time.process_time()
    for request in requests:
        if sock is None:
            sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        sock.sendall(request)
        status, keep_alive = _read_answer(sock)
        if not status.startswith(b"HTTP/1.1 200 "):
            errors += 1
        if not keep_alive:
            sock.close()
            sock = None
    if sock is not None:
        sock.close()
    results.put((errors, time.process_time() - cpu_started))


def drive(port: int, path: str, auth: str, bodies: list[bytes], clients: int) -> Driven:
    """Send the bodies from `clients` processes (each on one connection while the server
    keeps it open)."""
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(clients + 1)
    results = ctx.Queue()
    requests = [_request_bytes(port, path, auth, body) for body in bodies]
    shares = [requests[i::clients] for i in range(clients)]
    procs = [ctx.Process(target=_client, args=(port, share, barrier, results)) for share in shares]
    for proc in procs:
        proc.start()
    barrier.wait()
    started = time.perf_counter()
    answers = [results.get() for _ in procs]
    elapsed = time.perf_counter() - started
    for proc in procs:
        proc.join()
    failed = sum(errors for errors, _ in answers)
    client_cpu = sum(cpu for _, cpu in answers)
    return Driven(elapsed, failed, client_cpu / max(len(bodies), 1))


# ---------------------------------------------------------------------------------------
# Server CPU (steadier than throughput on a machine whose speed drifts)
# ---------------------------------------------------------------------------------------


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes so far (those gone meanwhile count nothing)."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    try:
        return [
            int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        ]
    except OSError:
        return []


def _local_backends(db_url: str) -> list[int]:
    """The bench database's PostgreSQL backends, when PostgreSQL runs on this machine."""
    with psycopg.connect(psycopg_url(db_url), autocommit=True) as conn:
        pids = [row[0] for row in conn.execute(
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )]  # fmt: skip
    local = []
    for pid in pids:
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() == "postgres":
                local.append(pid)
        except OSError:
            pass
    return local


@dataclass(frozen=True)
class ServerCpu:
    """What the server side spent during one run of requests, in seconds of CPU."""

    web: float
    postgres: float | None  # None: PostgreSQL is not on this machine
    rollup: float

    def describe(self, units: int, unit: str) -> str:
        parts = [f"web workers {self.web / units * 1e6:,.0f} us"]
        if self.postgres is not None:
            parts.append(f"PostgreSQL {self.postgres / units * 1e6:,.0f} us")
        if self.rollup:
            parts.append(f"rollup process {self.rollup / units * 1e6:,.0f} us")
        return f"  server CPU per {unit}: " + ", ".join(parts)


def measure_server_cpu(server: subprocess.Popen, rollup: subprocess.Popen | None, db_url: str):
    """Start measuring; call the returned function after the run for its ServerCpu."""
    web = _children(server.pid)
    backends = _local_backends(db_url)
    own = [rollup.pid] if rollup is not None else []
    before = (_cpu_seconds(web), _cpu_seconds(backends), _cpu_seconds(own))

    def finish() -> ServerCpu:
        return ServerCpu(
            web=_cpu_seconds(web) - before[0],
            postgres=_cpu_seconds(backends) - before[1] if backends else None,
            rollup=_cpu_seconds(own) - before[2],
        )

    return finish


# ---------------------------------------------------------------------------------------
# Server
# ---------------------------------------------------------------------------------------


def start_server(
    env: dict, port: int, workers: int, worker_class: str = "sync", threads: int = 1
) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "gunicorn", "metrics_source.wsgi:application",
        "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--worker-class", worker_class,
        "--threads", str(threads), "--log-level", "warning", "--no-control-socket",
    ]  # fmt: skip
    # As `make run` serves: no access log (gunicorn's default). Writing one to /dev/null still
    # formats every line, about 3 % of a worker's time on single events.
    if os.environ.get("BENCH_ACCESS_LOG"):
        command += ["--access-logfile", "-"]
    server = subprocess.Popen(command, cwd=ROOT, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return server
        except OSError:
            time.sleep(0.2)
    server.terminate()
    raise SystemExit("the server did not become healthy within 30 s")


# The rollup as the worker runs it under steady ingest: woken about every half second (the
# ingest wake-up is throttled to one per WAKEUP_INTERVAL per web process), it catches up.
ROLLUP_LOOP = """
import time
from metrics_source.summaries.rollup import summaries_catch_up
while True:
    summaries_catch_up()
    time.sleep(0.5)
"""


def start_rollup(env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "shell", "-c", ROLLUP_LOOP], cwd=ROOT, env=env
    )


def rollup_lag(db_url: str, timeout: float = 600) -> float:
    """Seconds until the summary queue is empty (the rollup has taken every event)."""
    started = time.perf_counter()
    with psycopg.connect(psycopg_url(db_url), autocommit=True) as conn:
        while conn.execute("SELECT EXISTS (SELECT 1 FROM summary_queue)").fetchone()[0]:
            if time.perf_counter() - started > timeout:
                raise SystemExit("the rollup did not catch up")
            time.sleep(0.1)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=60_000, help="events for the batch run")
    parser.add_argument("--track-events", type=int, default=8_000, help="events for /v1/track")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn sync workers")
    parser.add_argument("--clients", type=int, default=3, help="client processes")
    parser.add_argument("--worker-class", default="sync", help="gunicorn worker class")
    parser.add_argument("--threads", type=int, default=1, help="threads per gunicorn worker")
    parser.add_argument("--no-rollup", action="store_true", help="leave the dashboard's rollup out")
    parser.add_argument(
        "--events-per-delivery",
        type=int,
        default=1,
        choices=range(1, 5),
        help="1 (default): every event a new delivery; 2-4: the steps of each delivery",
    )
    parser.add_argument(
        "--random-pairs",
        action="store_true",
        help="give each event an independent random campaign and action (16,000 pairs)",
    )
    args = parser.parse_args()
    under_local_servers()

    database = fresh_database("bench", make_target="bench")
    bench_url = database.url
    env = migrated_env(database)
    auth = source_auth(env)

    random.seed(7)
    start = datetime.now(UTC) - timedelta(days=1)
    per = args.events_per_delivery
    pairs = args.random_pairs
    batch_events = [make_event(n, start, per, pairs) for n in range(args.events)]
    track_events = [
        make_event(args.events + n, start, per, pairs) for n in range(args.track_events)
    ]
    avg_size = sum(len(orjson.dumps(e)) for e in batch_events[:1000]) / 1000
    print(f"machine: {os.cpu_count()} cores; events of about {avg_size:.0f} bytes")

    baseline = copy_baseline(bench_url, batch_events)
    print(f"baseline  COPY into a bare table (unique message_id, jsonb), one stream: "
          f"{baseline:10,.0f} events/s")  # fmt: skip
    table_copy = copy_events_table(bench_url, batch_events)
    print(f"reference COPY of the same events, mapped, into a copy of the events table "
          f"(its columns and indexes), one stream: {table_copy:10,.0f} events/s "
          f"({table_copy / baseline:.0%} of the bare COPY)")  # fmt: skip

    port = free_port()
    server = start_server(env, port, args.workers, args.worker_class, args.threads)
    rollup = None if args.no_rollup else start_rollup(env)
    try:
        sent_at = datetime.now(UTC).isoformat()
        batches = [
            orjson.dumps({"batch": batch_events[i : i + 100], "sentAt": sent_at})
            for i in range(0, len(batch_events), 100)
        ]
        # Warm up each worker's connection and imports with one distinct batch each.
        warm = [
            orjson.dumps({"batch": [make_event(n, start) for n in range(100)]}) for _ in range(6)
        ]
        drive(port, "/v1/batch", auth, warm, args.clients)
        if rollup is not None:
            rollup_lag(bench_url)  # the rollup's connection is open before measuring starts
        server_cpu = measure_server_cpu(server, rollup, bench_url)
        driven = drive(port, "/v1/batch", auth, batches, args.clients)
        batch_cpu = server_cpu()
        batch_rate = len(batch_events) / driven.seconds
        print(f"/v1/batch 100 events per request, {args.clients} clients, {args.workers} workers: "
              f"{batch_rate:10,.0f} events/s  ({batch_rate / baseline:.0%} of COPY, "
              f"{batch_rate / table_copy:.0%} of the events-table COPY; "
              f"{driven.failed} failed requests; clients' CPU "
              f"{driven.client_cpu_per_request * 1e6:,.0f} us per request)")  # fmt: skip
        print(batch_cpu.describe(len(batch_events), "event"))

        singles = [orjson.dumps(e) for e in track_events]
        server_cpu = measure_server_cpu(server, rollup, bench_url)
        driven = drive(port, "/v1/track", auth, singles, args.clients)
        track_cpu = server_cpu()
        track_rate = len(singles) / driven.seconds
        print(f"/v1/track 1 event per request,  {args.clients} clients, {args.workers} workers: "
              f"{track_rate:10,.0f} requests/s ({driven.failed} failed requests; clients' CPU "
              f"{driven.client_cpu_per_request * 1e6:,.0f} us per request)")  # fmt: skip
        print(track_cpu.describe(len(singles), "request"))

        if rollup is not None:
            lag = rollup_lag(bench_url)
            print(f"rollup: the summaries had caught up {lag:.1f} s after the last request")
        with psycopg.connect(psycopg_url(bench_url)) as conn:
            stored = conn.execute("SELECT count(*) FROM metrics_source_event").fetchone()[0]
        expected = len(batch_events) + len(track_events) + 600
        print(f"stored rows: {stored:,} (expected {expected:,})")
        print(f"ratio batch/COPY: {batch_rate / baseline:.2f} "
              f"(the events-table COPY: {table_copy / baseline:.2f})")  # fmt: skip
    finally:
        if rollup is not None:
            rollup.terminate()
            rollup.wait(timeout=30)
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        database.drop()


if __name__ == "__main__":
    main()
