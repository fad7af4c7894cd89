"""Values as the pages write them: counts, percentages, changes against the previous period,
and durations."""

from __future__ import annotations

from datetime import datetime, timedelta


def percent(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def number(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def count_change(current: int, previous: int) -> tuple[str, str]:
    """'+12.5% vs previous' and its tone (more sent/delivered is good)."""
    if not previous:
        return ("new in this period" if current else "", "")
    change = (current - previous) / previous
    return (
        f"{change:+.1%} vs previous",
        "good" if change > 0 else "bad" if change < 0 else "",
    )


def rate_change(
    current: float | None, previous: float | None, *, bad_when_up: bool
) -> tuple[str, str]:
    """'+1.2 pts vs previous' (percentage points) and its tone."""
    if current is None or previous is None:
        return "", ""
    points = (current - previous) * 100
    if abs(points) < 0.05:
        return "no change vs previous", ""
    up_is_good = not bad_when_up
    tone = "good" if (points > 0) == up_is_good else "bad"
    return f"{points:+.1f} pts vs previous", tone


def since(moment: datetime, origin: datetime | None) -> str:
    """'2 h 5 min after sent' (or before, for an event timestamped earlier)."""
    if origin is None:
        return ""
    delta = moment - origin
    if delta == timedelta(0):
        return "at send"
    word = "after" if delta > timedelta(0) else "before"
    return f"{duration(abs(delta))} {word} sent"


def duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{secs} s" if secs else "under 1 s"
