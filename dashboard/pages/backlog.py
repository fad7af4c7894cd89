"""The notice every page shows when stored events wait too long for the rollup."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from dashboard import selectors

# The rollup is woken after every ingest commit and by beat every few seconds: an event still
# queued after a minute means it is not running (or cannot keep up), and the charts say so.
BACKLOG_NOTICE_AFTER = timedelta(seconds=60)


@dataclass(frozen=True)
class BacklogNotice:
    events: str  # "1,234 stored events" / "more than 100,000 stored events"
    verb: str  # "is" / "are"
    oldest_received_at: datetime


def stale_backlog() -> BacklogNotice | None:
    """The summaries' backlog when it is old enough to tell the reader about, else None."""
    backlog = selectors.summaries_backlog()
    if backlog is None or datetime.now(UTC) - backlog.oldest_received_at < BACKLOG_NOTICE_AFTER:
        return None
    noun = "stored event" if backlog.events == 1 else "stored events"
    events = f"{'more than ' if backlog.capped else ''}{backlog.events:,} {noun}"
    return BacklogNotice(events, "is" if backlog.events == 1 else "are", backlog.oldest_received_at)
