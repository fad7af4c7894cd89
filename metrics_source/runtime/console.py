"""A console a person can read: Celery's lines about routine work become DEBUG records.

Beat sends the forwarding sweep every two seconds and the rollup every five; at INFO each
run printed three lines (beat sending it, the worker receiving it, the worker finishing it),
about 130,000 a day. Those lines are demoted to DEBUG, so they show only at LOG_LEVEL=DEBUG;
everything else keeps its level: start-up, warnings, task failures (ERROR), restarts.
"""

from __future__ import annotations

import logging

from celery.app import trace

# Each routine line by its logger and the format string Celery logs it with (matched exactly,
# so any other line of those loggers, a failure included, keeps its level).
ROUTINE_LINES: dict[str, frozenset[str]] = {
    "celery.beat": frozenset({"Scheduler: Sending due task %s (%s)"}),
    "celery.worker.strategy": frozenset({trace.LOG_RECEIVED}),
    "celery.app.trace": frozenset({trace.LOG_SUCCESS}),
    # A sweep that waited past its expiry is superseded by the next one by design.
    "celery.worker.request": frozenset({"Discarding revoked task: %s[%s]"}),
}


class RoutineToDebug(logging.Filter):
    """Turns a routine INFO record into a DEBUG one, passed on only when DEBUG is wanted."""

    def __init__(self, formats: frozenset[str]) -> None:
        super().__init__()
        self.formats = formats

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.INFO and record.msg in self.formats:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger().isEnabledFor(logging.DEBUG)
        return True


_FILTERS = {name: RoutineToDebug(formats) for name, formats in ROUTINE_LINES.items()}


def quiet_routine_lines() -> None:
    """Install the filters on Celery's loggers (idempotent: each filter is added once)."""
    for name, routine in _FILTERS.items():
        logging.getLogger(name).addFilter(routine)
