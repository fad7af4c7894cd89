"""Keep the embedded servers up while the command runs: about every second the wrapper looks at
each server it started or adopted, and starts a dead one again where its clients already
connect (the same socket folder and port), so they reconnect by themselves.

Several wrappers may share a data directory and all of them watch; the restart happens under
the data directory's lock, after looking again, so two of them never start two servers.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from metrics_source.runtime.embedded.errors import EmbeddedError
from metrics_source.runtime.embedded.files import locked_if_free
from metrics_source.runtime.embedded.postgres import postgres_restart, postgres_status
from metrics_source.runtime.embedded.redis import redis_restart, redis_status

CHECK_EVERY = 1.0
# A server that runs but has not answered for this long is hung: it is stopped and started
# again. (Busy servers still answer a ping; this is for a stopped process, SIGSTOP, a deadlock.)
SILENT_LIMIT = 30.0
BACKOFF_MAX = 30.0


@dataclass
class Watched:
    name: str
    status: Callable[[], str]  # "ok", "dead" or "silent"
    restart: Callable[[], str]  # returns where the server listens again
    silent_since: float | None = None
    failures: int = 0
    next_try: float = 0.0


def postgres_watched(pgdata: Path) -> Watched:
    return Watched("PostgreSQL", lambda: postgres_status(pgdata), lambda: postgres_restart(pgdata))


def redis_watched(folder: Path) -> Watched:
    return Watched("Redis", lambda: redis_status(folder), lambda: redis_restart(folder))


class ServerWatch:
    """``check()`` is called from the wrapper's wait loop; it does its work at most every
    CHECK_EVERY seconds and returns at once otherwise."""

    def __init__(
        self, directory: Path, servers: list[Watched], *, log: TextIO = sys.stderr
    ) -> None:
        self.directory = directory
        self.servers = servers
        self.log = log
        self._next_check = time.monotonic() + CHECK_EVERY

    def check(self) -> None:
        now = time.monotonic()
        if now < self._next_check:
            return
        for server in self.servers:
            try:
                self._check(server, now)
            except Exception as error:  # the command runs on; the next check tries again
                self._say(f"could not check {server.name}: {type(error).__name__}: {error}")
        self._next_check = time.monotonic() + CHECK_EVERY

    def _say(self, line: str) -> None:
        print(f"embedded: {line}", file=self.log, flush=True)

    def _check(self, server: Watched, now: float) -> None:
        status = server.status()
        if status == "ok":
            server.silent_since = None
            server.failures = 0
            return
        if status == "silent":
            server.silent_since = server.silent_since or now
            if now - server.silent_since < SILENT_LIMIT:
                return
        if now < server.next_try:
            return
        with locked_if_free(self.directory) as free:
            # Busy: another command is starting, stopping or restarting the servers; look again
            # next time. Then look again under the lock: another watcher may have been first.
            if not free or server.status() == "ok":
                return
            self._restart(server, "hung" if status == "silent" else "gone")

    def _restart(self, server: Watched, why: str) -> None:
        began = time.monotonic()
        try:
            where = server.restart()
        except EmbeddedError as error:
            server.failures += 1
            wait = min(BACKOFF_MAX, 2.0 ** (server.failures - 1))
            server.next_try = time.monotonic() + wait
            self._say(
                f"{server.name} is {why} and did not start again: {error}; next try in {wait:g} s"
            )
            return
        self._say(
            f"{server.name} was {why}; started again on {where} in {time.monotonic() - began:.1f} s"
        )
        server.silent_since = None
        server.failures = 0
