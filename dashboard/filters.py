"""The query-string filters every page shares: period, interval, channel, parent, source and
date basis. Parsed once per request; invalid values fall back to defaults with a notice the
page shows, never an error."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.conf import settings
from django.http import QueryDict
from django.utils import timezone

from metrics_source.ingest.catalog import CHANNEL_LABELS, Channel
from metrics_source.summaries.metrics import Basis, ParentKind

PERIODS: dict[str, tuple[str, timedelta]] = {
    "24h": ("Last 24 hours", timedelta(hours=24)),
    "7d": ("Last 7 days", timedelta(days=7)),
    "30d": ("Last 30 days", timedelta(days=30)),
    "90d": ("Last 90 days", timedelta(days=90)),
}
CUSTOM = "custom"
DEFAULT_PERIOD = "30d"
# A campaign's (broadcast's, ...) own page defaults to its lifetime: the days from its first to
# its last event, so a message sent 31 days ago is not shown as "Sent 0".
LIFETIME = "lifetime"
LIFETIME_LABEL = "Message lifetime"
INTERVALS = ("hour", "day", "week")
# The interval a period gets unless one is chosen: about 24 to 90 points per chart.
DEFAULT_INTERVAL = {"24h": "hour", "7d": "day", "30d": "day", "90d": "week", CUSTOM: "day"}
BASES = {"event": Basis.EVENT, "sent": Basis.SENT}
BASIS_LABELS = {"event": "When the event happened", "sent": "When the message was sent"}
# The longest custom period: hourly series beyond that would be unreadable and slow.
MAX_CUSTOM_DAYS = 400
# Custom dates run from EARLIEST_CUSTOM_DATE to tomorrow (in TIME_ZONE): no message metric is
# older than the first of these services, and none comes from the future; dates beyond would
# only reach Python's date limits (year 1 or 9999) in the period arithmetic.
EARLIEST_CUSTOM_DATE = date(2000, 1, 1)
MAX_HOURLY_DAYS = 14


@dataclass(frozen=True)
class Filters:
    period: str
    start: datetime  # inclusive, aware
    end: datetime  # exclusive, aware
    interval: str
    basis: str = "event"
    channel: str | None = None
    parent_kind: str | None = None
    parent_id: int | None = None
    source_id: int | None = None
    notices: tuple[str, ...] = field(default=(), compare=False)
    # The period when the query names none: LIFETIME on a parent's own page.
    default_period: str = DEFAULT_PERIOD
    # The period is the parent's lifetime (a custom range of days, chosen by default).
    lifetime: bool = False

    @property
    def basis_value(self) -> int:
        return BASES[self.basis]

    @property
    def time_zone(self) -> ZoneInfo:
        return ZoneInfo(settings.TIME_ZONE or "UTC")

    @property
    def parent(self) -> str | None:
        if self.parent_kind is None:
            return None
        return f"{self.parent_kind}:{self.parent_id}"

    def previous(self) -> Filters:
        """The same filters over the period just before this one (for "change vs before")."""
        length = self.end - self.start
        return replace(self, start=self.start - length, end=self.start, notices=(), lifetime=False)

    @property
    def period_choice(self) -> str:
        """The filter bar's selected period."""
        return LIFETIME if self.lifetime else self.period

    def params(self, **changes: str | int | None) -> dict[str, str]:
        """The query parameters that differ from the defaults, with ``changes`` applied."""
        values: dict[str, str | int | None] = {
            # A lifetime is written as its dates: a link to another page (the deliveries behind
            # a funnel step) covers the same days.
            "period": self.period if self.period != self.default_period else None,
            "interval": self.interval if self.interval != DEFAULT_INTERVAL[self.period] else None,
            "basis": self.basis if self.basis != "event" else None,
            "channel": self.channel,
            "parent": self.parent,
            "source": self.source_id,
        }
        if self.period == CUSTOM:
            local_end = (self.end - timedelta(microseconds=1)).astimezone(self.time_zone)
            values["from"] = self.start.astimezone(self.time_zone).date().isoformat()
            values["to"] = local_end.date().isoformat()
        values.update(changes)
        if values.get("period") != CUSTOM:
            values.pop("from", None), values.pop("to", None)
        return {key: str(value) for key, value in values.items() if value not in (None, "")}

    def query(self, **changes: str | int | None) -> str:
        params = self.params(**changes)
        return "?" + urlencode(params) if params else ""

    def interval_starts(self) -> list[datetime]:
        """The start of every interval in the period, in the display time zone, as the
        series query labels them (so intervals without activity can be shown as zero)."""
        zone = self.time_zone
        local = self.start.astimezone(zone).replace(tzinfo=None)
        end = self.end.astimezone(zone).replace(tzinfo=None)
        first = local.replace(minute=0, second=0, microsecond=0)
        step = timedelta(hours=1)
        if self.interval in ("day", "week"):
            first = first.replace(hour=0)
            step = timedelta(days=1)
        if self.interval == "week":
            first -= timedelta(days=first.weekday())  # weeks start on Monday, as date_trunc's
            step = timedelta(days=7)
        starts = []
        while first < end:
            starts.append(first.replace(tzinfo=zone))
            first += step
        return starts

    def unfinished_interval(self, now: datetime | None = None) -> datetime | None:
        """The start of the interval still going on (the period reaches past now), else
        None: its counts are partial."""
        now = now or timezone.now()
        if not self.start <= now < self.end:
            return None
        starts = [start for start in self.interval_starts() if start <= now]
        return starts[-1] if starts else None

    @property
    def period_phrase(self) -> str:
        """The period inside a sentence: "in the last 30 days", "from 2026-11-01 to ..."."""
        if self.lifetime:
            return f"over its lifetime ({self.period_label.removeprefix(LIFETIME_LABEL + ', ')})"
        if self.period == CUSTOM:
            return f"from {self.period_label}"
        return f"in the {self.period_label[0].lower()}{self.period_label[1:]}"

    @property
    def period_label(self) -> str:
        if self.period == CUSTOM:
            params = self.params()
            dates = f"{params['from']} to {params['to']}"
            return f"{LIFETIME_LABEL}, {dates}" if self.lifetime else dates
        return PERIODS[self.period][0]


def _hour_ceiling(moment: datetime) -> datetime:
    floor = moment.replace(minute=0, second=0, microsecond=0)
    return floor if floor == moment else floor + timedelta(hours=1)


def _parse_date(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def _lifetime_interval(days: int) -> str:
    """About 24 to 120 points whatever the lifetime's length."""
    return "hour" if days <= 2 else "day" if days <= 120 else "week"


def filters_from_query(
    query: QueryDict,
    *,
    now: datetime | None = None,
    lifetime: tuple[datetime, datetime] | None = None,
) -> Filters:
    """Read the filters from a request's query string; every bad value becomes a notice.

    ``lifetime`` (a parent's first and last event) makes the parent's lifetime the default
    period: the days from the first to the last, in the display time zone, uncapped."""
    notices: list[str] = []
    zone = ZoneInfo(settings.TIME_ZONE or "UTC")
    # Presets end at the next full hour, so the last hourly bucket is whole.
    now = now or timezone.now()
    end = _hour_ceiling(now)

    default_period = LIFETIME if lifetime else DEFAULT_PERIOD
    period = query.get("period") or default_period
    is_lifetime = False
    start: datetime
    if period == LIFETIME and lifetime is None:
        period = DEFAULT_PERIOD  # a lifetime link followed to a page that has none
    if period == LIFETIME and lifetime is not None:
        # Within the dates a custom period may use: a stored time at the calendar's ends
        # (year 1 or 9999) must not reach the date arithmetic.
        latest = now.astimezone(zone).date() + timedelta(days=1)
        first_day = min(max(lifetime[0].astimezone(zone).date(), EARLIEST_CUSTOM_DATE), latest)
        last_day = min(max(lifetime[1].astimezone(zone).date(), first_day), latest)
        start = datetime.combine(first_day, time(), tzinfo=zone)
        end = datetime.combine(last_day + timedelta(days=1), time(), tzinfo=zone)
        period, is_lifetime = CUSTOM, True
    elif period == CUSTOM:
        first, last = _parse_date(query.get("from")), _parse_date(query.get("to"))
        latest = now.astimezone(zone).date() + timedelta(days=1)  # tomorrow
        if first is None or last is None or first > last:
            notices.append("The custom dates were missing or invalid; showing the last 30 days.")
            period = DEFAULT_PERIOD
        elif first < EARLIEST_CUSTOM_DATE or last > latest:
            notices.append(
                f"Custom dates must fall between {EARLIEST_CUSTOM_DATE.isoformat()} and "
                f"{latest.isoformat()}; showing the last 30 days."
            )
            period = DEFAULT_PERIOD
        elif (last - first).days >= MAX_CUSTOM_DAYS:
            notices.append(
                f"Custom periods are limited to {MAX_CUSTOM_DAYS} days; showing the last 30 days."
            )
            period = DEFAULT_PERIOD
        else:
            start = datetime.combine(first, time(), tzinfo=zone)
            end = datetime.combine(last + timedelta(days=1), time(), tzinfo=zone)
    elif period not in PERIODS:
        notices.append(f"Unknown period {period!r}; showing the last 30 days.")
        period = DEFAULT_PERIOD
    if period != CUSTOM:
        start = end - PERIODS[period][1]

    default_interval = (
        _lifetime_interval((end - start).days) if is_lifetime else DEFAULT_INTERVAL[period]
    )
    interval = query.get("interval") or default_interval
    if interval not in INTERVALS:
        notices.append(f"Unknown interval {interval!r}; showing {default_interval}ly points.")
        interval = default_interval
    if interval == "hour" and end - start > timedelta(days=MAX_HOURLY_DAYS):
        notices.append(f"Hourly points are offered up to {MAX_HOURLY_DAYS} days; showing days.")
        interval = "day"

    basis = query.get("basis") or "event"
    if basis not in BASES:
        notices.append(f"Unknown date basis {basis!r}; using when the event happened.")
        basis = "event"

    channel = query.get("channel") or None
    if channel is not None and channel not in {c.value for c in Channel}:
        notices.append(f"Unknown channel {channel!r}; showing all channels.")
        channel = None

    parent_kind: str | None = None
    parent_id: int | None = None
    if parent := query.get("parent"):
        kind, _, number = parent.partition(":")
        if kind in ParentKind.LABELS and kind and number.isdigit() and len(number) < 19:
            parent_kind, parent_id = kind, int(number)
        else:
            notices.append(f"Unknown campaign or message {parent!r}; showing all of them.")

    source_id: int | None = None
    if source := query.get("source"):
        if source.isdigit() and len(source) < 10:
            source_id = int(source)
        else:
            notices.append(f"Unknown source {source!r}; showing all sources.")

    return Filters(
        period=period,
        start=start,
        end=end,
        interval=interval,
        basis=basis,
        channel=channel,
        parent_kind=parent_kind,
        parent_id=parent_id,
        source_id=source_id,
        notices=tuple(notices),
        default_period=default_period,
        lifetime=is_lifetime,
    )


def channel_label(channel: str) -> str:
    try:
        return CHANNEL_LABELS[Channel(channel)]
    except ValueError:
        return channel


def parent_label(kind: str, parent_id: int, label: str = "") -> str:
    name = f"{ParentKind.LABELS.get(kind, kind)} {parent_id}"
    return f"{name} · {label}" if label else name
