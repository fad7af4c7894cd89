"""manage.py demo_data and its generator: realistic, reproducible, stored through ingest."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import call_command
from django.db.models import Count, Q
from django.utils import timezone

from metrics_source.demo import DemoStream, demo_calls
from metrics_source.ingest.catalog import EVENT_TYPES, Channel, event_type_by_name
from metrics_source.models import Event, Origin, Source

NOW = datetime(2026, 4, 15, 12, 30, tzinfo=UTC)
PARENTS = ("campaign_id", "broadcast_id", "newsletter_id", "transactional_message_id")


def run(**options) -> str:
    out = StringIO()
    call_command("demo_data", no_progress=True, stdout=out, stderr=StringIO(), **options)
    return out.getvalue()


@pytest.fixture(scope="module")
def sample() -> tuple[DemoStream, list[dict]]:
    stream = DemoStream(events=100_000, seed=7, now=NOW)
    return stream, list(stream)


def _first_by_delivery(calls: list[dict], channel_prefix: str) -> dict[str, set[str]]:
    """Metric word -> delivery ids that reached it, for one channel (repeats ignored)."""
    reached: dict[str, set[str]] = defaultdict(set)
    for call in calls:
        delivery = call["properties"].get("delivery_id")
        if delivery and call["event"].startswith(channel_prefix):
            reached[call["event"].removeprefix(channel_prefix)].add(delivery)
    return reached


# ---- the generator (no database) ----------------------------------------------------


def test_same_seed_gives_identical_calls_and_another_seed_different_ones():
    first = list(demo_calls(events=3_000, seed=11, now=NOW))
    assert first == list(demo_calls(events=3_000, seed=11, now=NOW))
    other = {c["messageId"] for c in demo_calls(events=3_000, seed=12, now=NOW)}
    assert other.isdisjoint(c["messageId"] for c in first)


def test_message_ids_do_not_depend_on_the_clock():
    later = datetime(2026, 5, 2, 7, 5, tzinfo=UTC)
    ids = {c["messageId"] for c in demo_calls(events=3_000, seed=11, now=NOW)}
    assert ids == {c["messageId"] for c in demo_calls(events=3_000, seed=11, now=later)}


def test_sized_by_distinct_events_with_about_one_percent_repeats(sample):
    stream, calls = sample
    ids = Counter(c["messageId"] for c in calls)
    assert len(ids) == 100_000 == stream.stats.events
    repeats = len(calls) - len(ids)
    assert repeats == stream.stats.repeats
    assert 0.005 < repeats / len(ids) < 0.02
    # Some repeats come right after the first copy, some thousands of calls later.
    first_seen: dict[str, int] = {}
    gaps = []
    for position, call in enumerate(calls):
        if call["messageId"] in first_seen:
            gaps.append(position - first_seen[call["messageId"]])
        else:
            first_seen[call["messageId"]] = position
    assert min(gaps) == 1
    assert max(gaps) > 2_500


def test_a_few_percent_of_deliveries_arrive_out_of_order(sample):
    _, calls = sample
    last_seen: dict[str, str] = {}
    out_of_order = set()
    for call in calls:
        delivery = call["properties"].get("delivery_id")
        if delivery is None:
            continue
        if delivery in last_seen and call["timestamp"] < last_seen[delivery]:
            out_of_order.add(delivery)
        last_seen[delivery] = max(call["timestamp"], last_seen.get(delivery, ""))
    share = len(out_of_order) / len(last_seen)
    assert 0.01 < share < 0.06


def test_events_are_catalogue_names_in_the_window_and_never_in_the_future(sample):
    _, calls = sample
    semantic = {e.name for e in EVENT_TYPES if e.semantic}
    assert {c["event"] for c in calls} <= semantic
    assert {c["event"] for c in calls} >= {"Email Bounced", "Subscribed", "Unsubscribed"}
    channels = {event_type_by_name(c["event"]).channel for c in calls}
    assert channels == {
        Channel.EMAIL, Channel.PUSH, Channel.SMS, Channel.IN_APP, Channel.WEBHOOK,
        Channel.SLACK, Channel.SUBSCRIPTION,
    }  # fmt: skip
    stamps = [datetime.fromisoformat(c["timestamp"]) for c in calls]
    assert max(stamps) <= NOW
    assert min(stamps) >= NOW - (NOW - NOW.replace(month=1, day=15))
    assert max(datetime.fromisoformat(c["sentAt"]) for c in calls) <= NOW


def test_every_delivery_has_exactly_one_parent_and_subscriptions_none(sample):
    _, calls = sample
    parents: dict[str, set[tuple]] = defaultdict(set)
    kinds = Counter()
    for call in calls:
        properties = call["properties"]
        present = tuple(key for key in PARENTS if key in properties)
        if call["event"] in {"Subscribed", "Unsubscribed", "Subscription Preferences Changed"}:
            assert "delivery_id" not in properties and not present
            assert properties["email_address"] == call["context"]["traits"]["email"]
            continue
        assert len(present) == 1, call
        parents[properties["delivery_id"]].add(tuple(properties[k] for k in present) + present)
        kinds[present[0]] += 1
        if "campaign_id" in properties:
            assert {"action_id", "journey_id"} <= properties.keys()
        if "newsletter_id" in properties:
            assert "content_id" in properties
    assert all(len(p) == 1 for p in parents.values())
    assert all(kinds[key] > 0 for key in PARENTS)


def test_email_funnel_is_plausible(sample):
    _, calls = sample
    reached = _first_by_delivery(calls, "Email ")
    sent, delivered = len(reached["Sent"]), len(reached["Delivered"])
    assert 0.95 <= delivered / sent <= 0.985
    assert 0.20 <= len(reached["Opened"]) / delivered <= 0.45
    assert 0.02 <= len(reached["Link Clicked"]) / delivered <= 0.05
    assert 0 < len(reached["Converted"]) < len(reached["Link Clicked"])
    assert 0.01 <= len(reached["Bounced"]) / sent <= 0.03
    for metric in ("Suppressed", "Failed", "Marked as Spam", "Unsubscribed", "Attempted"):
        assert 0 < len(reached[metric]) < 0.02 * sent, metric


def test_open_rates_vary_by_parent_and_opens_and_clicks_carry_their_flags(sample):
    _, calls = sample
    opened, delivered = Counter(), Counter()
    opens = machine_opens = clicks = machine_clicks = 0
    links = Counter()
    for call in calls:
        properties = call["properties"]
        parent = tuple(properties.get(key) for key in (*PARENTS, "action_id", "content_id"))
        if call["event"] == "Email Delivered":
            delivered[parent] += 1
        elif call["event"] == "Email Opened":
            opened[parent] += 1
            opens += 1
            machine_opens += properties["prefetched"] or properties["proxied"]
        elif call["event"] == "Email Link Clicked":
            clicks += 1
            machine_clicks += properties["machine"]
            assert properties["href"].startswith("https://")
            links[(parent, properties["link_id"])] += 1
    rates = [opened[p] / delivered[p] for p in delivered if delivered[p] > 500]
    assert max(rates) - min(rates) > 0.08
    assert 0.12 <= machine_opens / opens <= 0.3
    assert 0 < machine_clicks < 0.2 * clicks
    # Link popularity is skewed: a busy message's top link takes far more than its share.
    by_message: dict[tuple, list[int]] = defaultdict(list)
    for (parent, _), count in links.items():
        by_message[parent].append(count)
    busiest = max((c for c in by_message.values() if len(c) >= 3), key=sum)
    assert max(busiest) > 1.5 * sum(busiest) / len(busiest)


def test_channel_specific_properties(sample):
    _, calls = sample
    by_event = {}
    for call in calls:
        by_event.setdefault(call["event"], call)
    push = by_event["Push Bounced"]["properties"]
    assert push["recipients"][0]["failure_message"]
    assert push["recipients"][0]["device_platform"] in {"ios", "android"}
    assert "failure_message" not in push
    assert by_event["SMS Sent"]["properties"]["recipient"].startswith("+1555")
    assert by_event["Email Sent"]["properties"]["subject"]
    assert (
        by_event["Email Sent"]["properties"]["recipient"]
        == (by_event["Email Sent"]["context"]["traits"]["email"])
    )
    email_bounces = {
        c["properties"]["failure_message"] for c in calls if c["event"] == "Email Bounced"
    }
    assert "552 5.2.2 Mailbox full" in email_bounces
    assert "Carrier rejected: invalid number" in {
        c["properties"]["failure_message"] for c in calls if c["event"] == "SMS Bounced"
    }
    assert not any(c["event"] in {"In-App Delivered", "Webhook Delivered"} for c in calls)


def test_weekday_working_hours_send_more_than_nights_and_weekends(sample):
    _, calls = sample
    by_hour, by_weekday = Counter(), Counter()
    for call in calls:
        if call["event"].endswith(" Sent") and "campaign_id" in call["properties"]:
            moment = datetime.fromisoformat(call["timestamp"])
            by_hour[moment.hour] += 1
            by_weekday[moment.weekday()] += 1
    assert by_hour[11] > 4 * by_hour[3]
    assert by_weekday[2] > 1.8 * by_weekday[6]


# ---- the command (real PostgreSQL) -----------------------------------------------------


@pytest.mark.django_db
def test_command_stores_catalogue_events_through_ingest():
    output = run(events=3_000, seed=3)
    assert Event.objects.count() == 3_000
    source = Source.objects.get(name="Demo data")
    assert set(Event.objects.values_list("source_id", flat=True).distinct()) == {source.pk}
    assert set(Event.objects.values_list("origin", flat=True).distinct()) == {Origin.IMPORT}
    names = set(Event.objects.values_list("event", flat=True).distinct())
    assert names <= {e.name for e in EVENT_TYPES if e.semantic}
    assert not Event.objects.filter(timestamp__gt=timezone.now()).exists()
    assert "3,000 stored" in output and "0 rejected" in output and "events/s" in output
    # Each delivery names one parent, the same on all its events.
    parents = (
        Event.objects.exclude(delivery_id=None)
        .values("delivery_id")
        .annotate(
            n=Count("campaign_id", distinct=True)
            + Count("broadcast_id", distinct=True)
            + Count("newsletter_id", distinct=True)
            + Count("transactional_message_id", distinct=True)
        )
    )
    assert {row["n"] for row in parents} == {1}
    assert not Event.objects.filter(
        Q(campaign_id__isnull=False) & Q(transactional_message_id__isnull=False)
    ).exists()


@pytest.mark.django_db
def test_second_run_with_the_same_seed_stores_nothing_new_and_reuses_the_source():
    run(events=3_000, seed=5)
    output = run(events=3_000, seed=5)
    assert "0 stored" in output
    assert Event.objects.count() == 3_000
    assert Source.objects.filter(name="Demo data").count() == 1
    run(events=1_000, seed=6)
    assert Event.objects.count() == 4_000


@pytest.mark.django_db
def test_if_empty_skips_when_events_exist():
    output = run(events=500, seed=8, if_empty=True)
    assert Event.objects.count() == 500
    output = run(events=500, seed=9, if_empty=True)
    assert "already stored" in output
    assert Event.objects.count() == 500
