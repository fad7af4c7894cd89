"""Dashboard page times at millions of events, beside a raw GROUP BY baseline.

    .venv/bin/python bench/dashboard.py [--events 5000000] [--requests 25] [--reuse]

Runs on the servers DATABASE_URL and REDIS_URL name, or else, as `make bench-dashboard`,
on the data directory's embedded ones. It loads demo data
(``manage.py demo_data``: through the ingest service, then the rollup) into
``<name>_dashboard``, starts gunicorn on a free loopback port, logs in, and requests every
page repeatedly, printing the median and 95th percentile of the time to a full response.

The baseline, in the same run: the overview's aggregates (unique deliveries and events per
channel and metric for this period and the previous one, and the daily series) computed by a
plain GROUP BY over the raw events table, the way a dashboard without summaries would.

``--reuse`` keeps the database between runs (loading 5 million events takes a while): it is
reused when it already holds at least ``--events`` events. Never part of the test run.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import requests
from benchdb import (
    BenchDatabase,
    fresh_database,
    psycopg_url,
    under_local_servers,
    with_database,
)
from ingest import free_port, start_server

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "bench-" + uuid.uuid4().hex

# The raw-events equivalent of the overview's reads (two periods' totals and the series).
BASELINE_SQL = [
    """SELECT channel, metric, count(DISTINCT COALESCE(delivery_id, message_id)), count(*)
       FROM metrics_source_event WHERE timestamp >= now() - interval '30 days'
       GROUP BY 1, 2""",
    """SELECT channel, metric, count(DISTINCT COALESCE(delivery_id, message_id)), count(*)
       FROM metrics_source_event
       WHERE timestamp >= now() - interval '60 days' AND timestamp < now() - interval '30 days'
       GROUP BY 1, 2""",
    """SELECT date_trunc('day', timestamp), metric, count(DISTINCT COALESCE(delivery_id,
       message_id)), count(*) FROM metrics_source_event
       WHERE timestamp >= now() - interval '30 days' GROUP BY 1, 2""",
]


def bench_database(events: int, *, reuse: bool) -> tuple[BenchDatabase, bool]:
    """The bench database and whether it already holds the data."""
    base_url = os.environ.get("DATABASE_URL")
    if reuse and base_url:
        name = f"{urlsplit(base_url).path.lstrip('/') or 'metrics_source'}_dashboard"
        database = BenchDatabase(
            name, with_database(base_url, name), with_database(base_url, "postgres")
        )
        try:
            with psycopg.connect(psycopg_url(database.url)) as conn:
                stored = conn.execute("SELECT count(*) FROM metrics_source_event").fetchone()[0]
                queued = conn.execute(
                    "SELECT COALESCE(sum(cardinality(event_ids)), 0) FROM summary_queue"
                ).fetchone()[0]
            if stored >= events and not queued:
                return database, True
        except psycopg.Error:
            pass
    return fresh_database("dashboard", make_target="bench-dashboard"), False


def manage(env: dict, *args: str, capture: bool = False) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT, env=env, check=True, text=True, capture_output=capture,
    )  # fmt: skip
    return result.stdout if capture else ""


def timed(session: requests.Session, url: str, repeats: int) -> list[float]:
    for _ in range(2):  # warm up: imports, prepared plans, caches
        session.get(url).raise_for_status()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        response = session.get(url)
        times.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return times


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


def baseline_times(db_url: str, repeats: int) -> list[float]:
    times = []
    with psycopg.connect(psycopg_url(db_url)) as conn:
        for _ in range(repeats):
            started = time.perf_counter()
            for sql in BASELINE_SQL:
                conn.execute(sql).fetchall()
            times.append((time.perf_counter() - started) * 1000)
    return times


def pick(db_url: str) -> dict[str, str]:
    """Real ids to request: the busiest campaign, a delivery, a person, an email."""
    with psycopg.connect(psycopg_url(db_url)) as conn:
        kind, parent_id = conn.execute(
            "SELECT parent_kind, parent_id FROM metric_count WHERE parent_kind <> '' "
            "GROUP BY 1, 2 ORDER BY sum(events) DESC LIMIT 1"
        ).fetchone()
        delivery_id, person_id, recipient = conn.execute(
            "SELECT delivery_id, person_id, recipient FROM delivery_summary "
            "WHERE opened_at IS NOT NULL AND recipient IS NOT NULL "
            "ORDER BY created_at DESC LIMIT 1"
        ).fetchone()
    return {
        "kind": kind,
        "parent_id": str(parent_id),
        "delivery": delivery_id,
        "person": person_id,
        "recipient": recipient,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--requests", type=int, default=25, help="timed requests per page")
    parser.add_argument("--reuse", action="store_true", help="keep and reuse the database")
    args = parser.parse_args()
    under_local_servers()

    database, loaded = bench_database(args.events, reuse=args.reuse)
    env = dict(
        os.environ, DATABASE_URL=database.url, DJANGO_SETTINGS_MODULE="metrics_source.settings"
    )
    env.setdefault("SECRET_KEY", "bench-" + uuid.uuid4().hex + uuid.uuid4().hex)
    env["ADMIN_PASSWORD"] = PASSWORD
    manage(env, "migrate", "-v0")
    if not loaded:
        started = time.perf_counter()
        manage(env, "demo_data", "--events", str(args.events))
        print(f"loaded {args.events:,} demo events with their summaries in "
              f"{time.perf_counter() - started:,.0f} s")  # fmt: skip
    manage(
        env, "shell", "-c",
        "from django.contrib.auth.models import User\n"
        "u, _ = User.objects.get_or_create(username='bench', defaults={'is_staff': True, "
        "'is_superuser': True})\n"
        f"u.set_password({PASSWORD!r}); u.save()",
    )  # fmt: skip
    with psycopg.connect(psycopg_url(database.url)) as conn:
        events = conn.execute("SELECT count(*) FROM metrics_source_event").fetchone()[0]
        deliveries = conn.execute("SELECT count(*) FROM delivery_summary").fetchone()[0]
        counts = conn.execute("SELECT count(*) FROM metric_count").fetchone()[0]
    print(f"machine: {os.cpu_count()} cores; {events:,} events, {deliveries:,} deliveries, "
          f"{counts:,} hourly count rows")  # fmt: skip

    ids = pick(database.url)
    pages = {
        "overview (30 days)": "/",
        "overview (90 days, weekly)": "/?period=90d",
        "overview (send-date cohort)": "/?basis=sent",
        "channels": "/channels/",
        "channel: email": "/channels/email/",
        "campaigns": "/campaigns/",
        "campaign detail": f"/campaigns/{ids['kind']}/{ids['parent_id']}/",
        "deliveries: funnel step": "/deliveries/?channel=email&reached=opened",
        "deliveries: search by email": f"/deliveries/?q={ids['recipient']}",
        "delivery timeline": f"/deliveries/{ids['delivery']}/",
        "person": f"/people/{ids['person']}/",
    }

    port = free_port()
    server = start_server(env, port, workers=2)
    try:
        base = f"http://127.0.0.1:{port}"
        session = requests.Session()
        login = session.get(f"{base}/admin/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
        session.post(
            f"{base}/admin/login/?next=/",
            data={"username": "bench", "password": PASSWORD, "csrfmiddlewaretoken": token},
            headers={"Referer": f"{base}/admin/login/"},
        ).raise_for_status()

        baseline = baseline_times(database.url, max(5, args.requests // 5))
        base_median = statistics.median(baseline)
        print(f"\nbaseline: the overview's aggregates by GROUP BY over raw events: "
              f"median {base_median:,.0f} ms, p95 {p95(baseline):,.0f} ms\n")  # fmt: skip
        print(f"{'page':32} {'median ms':>10} {'p95 ms':>8} {'baseline/page':>14}")
        worst = 0.0
        for name, path in pages.items():
            times = timed(session, base + path, args.requests)
            median, high = statistics.median(times), p95(times)
            worst = max(worst, high)
            ratio = f"{base_median / median:12.1f}x" if name.startswith("overview") else ""
            print(f"{name:32} {median:10.1f} {high:8.1f} {ratio:>14}")
        print(f"\nslowest page p95: {worst:.0f} ms (goal: under 300 ms)")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        if not args.reuse:
            database.drop()


if __name__ == "__main__":
    main()
