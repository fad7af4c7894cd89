"""A cheap nudge from the ingest request to the forwarding sweep.

At most one per process every WAKEUP_INTERVAL seconds, and none for a while after the broker
failed: ingest must stay fast and must succeed with Redis down. Losing a wake-up only delays
events until the periodic sweep.
"""

from __future__ import annotations

import logging
import time

logger = logging.getLogger(__name__)

WAKEUP_INTERVAL = 0.5
BROKER_DOWN_BACKOFF = 30.0

_next_allowed = 0.0


def forwarding_wakeup() -> None:
    global _next_allowed
    now = time.monotonic()
    if now < _next_allowed:
        return
    _next_allowed = now + WAKEUP_INTERVAL
    from metrics_source.tasks import forwarding_sweep

    try:
        forwarding_sweep.apply_async(retry=False, expires=60)
    except Exception:  # any broker error: the periodic sweep covers for the lost nudge
        _next_allowed = now + BROKER_DOWN_BACKOFF
        logger.warning("forwarding wake-up not sent (broker unavailable)", exc_info=True)
