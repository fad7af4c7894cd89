"""What the events table costs to load, index by index, beside the ingest bench's baseline.

    .venv/bin/python bench/table_copy.py [--events 60000] [--rounds 3]

Runs on the servers DATABASE_URL and REDIS_URL name, or else, as ``make bench-table-copy``,
on the data directory's embedded ones. On the ingest bench's events, mapped by the ingest
service, it measures per round, each in a fresh table:

* the bare baseline: ``COPY`` into ``(message_id text UNIQUE, event jsonb)``, one stream;
* ``COPY`` of the mapped rows into a copy of the events table without indexes, with each
  index alone, and with all of them (what ``bench/ingest.py`` prints as its reference);
* the same with all indexes in 2 and 3 parallel streams (separate processes), in case one
  stream left a core idle.

It prints microseconds of wall time per event and the rate's ratio to the bare baseline. An
endpoint that stores these rows cannot beat the copy with all indexes by much; the split shows
which index costs what. Never part of the test run.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import psycopg
from benchdb import fresh_database, psycopg_url, under_local_servers
from ingest import (
    EVENTS_TABLE_COPY,
    ROOT,
    copy_baseline,
    copy_rows,
    copy_stream,
    make_event,
    mapped_rows,
)

BARE_TABLE = (
    "CREATE TABLE bench_copy_events (LIKE metrics_source_event INCLUDING DEFAULTS"
    " INCLUDING IDENTITY)"
)
# The events table's indexes, one by one (the names of migrations/ and models.py).
INDEXES = {
    "primary key (id)": "ALTER TABLE bench_copy_events ADD PRIMARY KEY (id)",
    "unique message_id": "ALTER TABLE bench_copy_events ADD UNIQUE (message_id)",
    "(delivery_id, timestamp)": (
        "CREATE INDEX ON bench_copy_events (delivery_id, timestamp) WHERE delivery_id IS NOT NULL"
    ),
    "(user_id, timestamp)": (
        "CREATE INDEX ON bench_copy_events (user_id, timestamp) WHERE user_id IS NOT NULL"
    ),
    "(anonymous_id, timestamp)": (
        "CREATE INDEX ON bench_copy_events (anonymous_id, timestamp)"
        " WHERE anonymous_id IS NOT NULL AND user_id IS NULL"
    ),
}


def _stream(url: str, columns: tuple[str, ...], rows: list[tuple], barrier) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        barrier.wait()
        copy_stream(conn, columns, rows)


def copy_parallel(db_url: str, columns: tuple[str, ...], rows: list[tuple], streams: int) -> float:
    url = psycopg_url(db_url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_copy_events")
        conn.execute(EVENTS_TABLE_COPY)
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(streams + 1)
    procs = [
        ctx.Process(target=_stream, args=(url, columns, rows[i::streams], barrier))
        for i in range(streams)
    ]
    for proc in procs:
        proc.start()
    barrier.wait()
    started = time.perf_counter()
    for proc in procs:
        proc.join()
    elapsed = time.perf_counter() - started
    with psycopg.connect(url, autocommit=True) as conn:
        copied = conn.execute("SELECT count(*) FROM bench_copy_events").fetchone()[0]
        conn.execute("DROP TABLE bench_copy_events")
    if copied != len(rows) or any(proc.exitcode for proc in procs):
        sys.exit(f"a COPY stream failed: {copied:,} of {len(rows):,} rows copied")
    return len(rows) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    under_local_servers()

    database = fresh_database("bench", make_target="bench-table-copy")
    try:
        env = dict(os.environ, DATABASE_URL=database.url)
        migrate = [sys.executable, "manage.py", "migrate", "-v0"]
        subprocess.run(migrate, cwd=ROOT, env=env, check=True)
        random.seed(7)
        start = datetime.now(UTC) - timedelta(days=1)
        events = [make_event(n, start) for n in range(args.events)]
        columns, rows = mapped_rows(database.url, events)

        def show(label: str, rate: float, bare: float) -> None:
            print(f"  {label:<42} {1e6 / rate:6.1f} us per event  {rate / bare:5.2f} of bare")

        for round_number in range(1, args.rounds + 1):
            print(f"round {round_number} ({args.events:,} events)")
            bare = copy_baseline(database.url, events)
            show("bare table (the ingest bench's baseline)", bare, bare)
            show("events table, no index", copy_rows(database.url, BARE_TABLE, columns, rows), bare)
            for name, index_sql in INDEXES.items():
                table = f"{BARE_TABLE}; {index_sql}"
                show(f"  + {name} alone", copy_rows(database.url, table, columns, rows), bare)
            every = copy_rows(database.url, EVENTS_TABLE_COPY, columns, rows)
            show("events table, all indexes", every, bare)
            for streams in (2, 3):
                rate = copy_parallel(database.url, columns, rows, streams)
                show(f"events table, all indexes, {streams} streams", rate, bare)
    finally:
        database.drop()


if __name__ == "__main__":
    main()
