"""A cheap nudge from the ingest request to the forwarding sweep and the summary rollup.

The request only sets a flag; a daemon thread of the process publishes the nudge, at most
one every WAKEUP_INTERVAL seconds. So ingest never waits on the broker: with Redis down,
connecting alone takes seconds of retries, and that must not hold a request. A lost nudge
only delays events until the periodic sweep.
"""

from __future__ import annotations

import logging
import os
import threading
import time

logger = logging.getLogger(__name__)

WAKEUP_INTERVAL = 0.5
BROKER_DOWN_BACKOFF = 30.0

_requested = threading.Event()
_lock = threading.Lock()
_thread_pid: int | None = None


def _publish_forever() -> None:
    from metrics_source.tasks import forwarding_sweep, summaries_refresh

    while True:
        _requested.wait()
        _requested.clear()
        try:
            forwarding_sweep.apply_async(retry=False, expires=60)
            summaries_refresh.apply_async(retry=False, expires=60)
        except Exception:  # any broker error: the periodic tasks cover for the lost nudge
            logger.warning("ingest wake-up not sent (broker unavailable)", exc_info=True)
            time.sleep(BROKER_DOWN_BACKOFF)
        time.sleep(WAKEUP_INTERVAL)


def ingest_wakeup() -> None:
    global _thread_pid
    # One thread per process: a forked worker (gunicorn) does not inherit its parent's.
    if _thread_pid != os.getpid():
        with _lock:
            if _thread_pid != os.getpid():
                threading.Thread(target=_publish_forever, name="ingest-wakeup", daemon=True).start()
                _thread_pid = os.getpid()
    _requested.set()
