"""Celery beat with a heartbeat, so a container health check can tell a live beat from a stuck
one (beat answers no ``inspect ping``, unlike a worker).

Run beat with ``--scheduler metrics_source.runtime.beat:HeartbeatScheduler``. Each time it hands a
task to the broker it writes, beside its schedule file, the time by which it will have handed
over the next one. ``python -m metrics_source.runtime.beat <schedule file>`` exits 0 while that time
has not passed and 1 (saying why) once it has: beat is dead, hung, or cannot reach the broker.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from celery.beat import PersistentScheduler

logger = logging.getLogger(__name__)

# Slack beyond the next task's due time: the beat loop's sleep, a slow publish, a busy host.
GRACE_SECONDS = 30.0
# With no interval schedule to go by (crontab entries only), expect a task this often.
DEFAULT_INTERVAL_SECONDS = 300.0


def heartbeat_path(schedule_file: str | os.PathLike[str]) -> Path:
    return Path(f"{os.fspath(schedule_file)}.heartbeat")


class HeartbeatScheduler(PersistentScheduler):
    """PersistentScheduler that records each successful hand-over to the broker."""

    def apply_async(self, entry: Any, producer: Any = None, advance: bool = True, **kwargs: Any):
        result = super().apply_async(entry, producer=producer, advance=advance, **kwargs)
        # Reached only when the broker took the task: a publish that failed raised above.
        try:
            self._write_heartbeat()
        except OSError as error:  # a full disk: the task was sent all the same
            logger.warning("beat could not record its heartbeat: %s", error)
        return result

    def _shortest_interval(self) -> float:
        intervals = [
            run_every.total_seconds()
            for entry in self.schedule.values()
            if isinstance(run_every := getattr(entry.schedule, "run_every", None), timedelta)
        ]
        return min(intervals, default=DEFAULT_INTERVAL_SECONDS)

    def _write_heartbeat(self) -> None:
        deadline = time.time() + 2 * self._shortest_interval() + GRACE_SECONDS
        path = heartbeat_path(self.schedule_filename)
        partial = path.with_name(path.name + ".tmp")
        partial.write_text(f"{deadline:.3f}\n")
        partial.replace(path)  # atomic: a check never reads half a line


def beat_health(schedule_file: str | os.PathLike[str], *, now: float | None = None) -> str | None:
    """None while beat is healthy, else what is wrong."""
    path = heartbeat_path(schedule_file)
    try:
        deadline = float(path.read_text())
    except FileNotFoundError:
        return f"beat has handed no task to the broker yet ({path} does not exist)"
    except (OSError, ValueError) as error:
        return f"cannot read beat's heartbeat {path}: {error}"
    late = (time.time() if now is None else now) - deadline
    if late > 0:
        return f"beat has handed no task to the broker for {late:.0f} s past its due time"
    return None


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m metrics_source.runtime.beat SCHEDULE_FILE", file=sys.stderr)
        return 2
    problem = beat_health(argv[0])
    if problem:
        print(problem, file=sys.stderr)
        return 1
    print("beat is handing tasks to the broker on time")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
