"""The event catalogue against the reference documents, read at test time.

The seed list of Customer.io's semantic events and the reporting-webhook table are parsed
from the reference markdown, so any drift between them and ``catalog`` fails here.
"""

from __future__ import annotations

import pytest

from metrics_source.ingest import catalog
from metrics_source.ingest.catalog import (
    CHANNEL_LABELS,
    EVENT_TYPES,
    SEMANTIC_CHANNELS,
    SEMANTIC_EVENT_TYPES,
    Channel,
    event_type_by_name,
    event_type_for_webhook,
)
from tests.payloads import (
    expected_event,
    reference_webhook_pairs,
    seed_channel_table,
    seed_event_names,
    seed_events,
)

SEED_CHANNEL_ORDER = ["Email", "Push", "SMS", "In-App", "Webhook", "Slack", "Subscription"]

# How a seed event's wording after the channel label names its metric.
_SEED_WORDING_TO_METRIC = {
    "Link Clicked": "clicked",
    "Clicked": "clicked",
    "Marked as Spam": "spammed",
    "Subscribed": "subscribed",
    "Unsubscribed": "unsubscribed",
    "Subscription Preferences Changed": "preferences_changed",
}


def _seed_metric(label: str, name: str) -> str:
    wording = name if label == "Subscription" else name.removeprefix(label + " ")
    return _SEED_WORDING_TO_METRIC.get(wording, wording.lower())


def _seed_rows() -> list[tuple[str, str]]:
    return [(label, name) for label, names in seed_events().items() for name in names]


# ------------------------------------------------------------------------------------------
# The seed list
# ------------------------------------------------------------------------------------------


def test_the_reference_lists_seven_channels_and_their_events():
    # Guards the parser: an empty or half-read list would make the other tests vacuous.
    assert list(seed_events()) == SEED_CHANNEL_ORDER
    assert all(len(names) >= 3 for names in seed_events().values())
    # The seed lists its events twice; both listings must agree.
    assert seed_events() == seed_channel_table()


def test_semantic_events_are_exactly_the_seed_names():
    names = [event.name for event in SEMANTIC_EVENT_TYPES]
    assert len(names) == len(set(names)), "a semantic name is listed twice"
    assert set(names) == seed_event_names()


def test_semantic_events_keep_the_seed_grouping_and_order():
    for label, seed_names in seed_events().items():
        in_catalogue = [e.name for e in SEMANTIC_EVENT_TYPES if CHANNEL_LABELS[e.channel] == label]
        assert in_catalogue == list(seed_names), label


def test_the_seven_semantic_channels():
    assert [CHANNEL_LABELS[channel] for channel in SEMANTIC_CHANNELS] == SEED_CHANNEL_ORDER
    assert {e.channel for e in SEMANTIC_EVENT_TYPES} == set(SEMANTIC_CHANNELS)


@pytest.mark.parametrize(("label", "name"), _seed_rows())
def test_each_seed_event_has_its_channel_and_metric(label, name):
    event_type = event_type_by_name(name)
    assert event_type is not None, name
    assert event_type.name == name  # exact spelling, not just a case-insensitive hit
    assert event_type.semantic is True
    assert CHANNEL_LABELS[event_type.channel] == label
    assert event_type.metric.value == _seed_metric(label, name)


def test_nothing_outside_the_seed_is_flagged_semantic():
    seed = seed_event_names()
    for event_type in EVENT_TYPES:
        assert event_type.semantic is (event_type.name in seed), event_type.name


def test_event_names_are_unique_and_message_metrics_are_unique_per_channel():
    assert len({e.name for e in EVENT_TYPES}) == len(EVENT_TYPES)
    message_events = [e for e in EVENT_TYPES if e.channel is not Channel.SUBSCRIPTION]
    pairs = [(e.channel, e.metric) for e in message_events]
    assert len(set(pairs)) == len(pairs)


# ------------------------------------------------------------------------------------------
# Reporting-webhook pairs
# ------------------------------------------------------------------------------------------


def test_the_reference_table_was_read():
    pairs = reference_webhook_pairs()
    assert {ot for ot, _ in pairs} == {
        "customer",
        "email",
        "push",
        "sms",
        "in_app",
        "slack",
        "webhook",
        "whatsapp",
    }
    # Both columns are read: the metrics subscribable without a schema are there too.
    assert {pair for pair, has_schema in pairs.items() if not has_schema} == {
        ("email", "deferred"),
        ("sms", "dropped"),
        ("slack", "converted"),
        ("webhook", "converted"),
    }


@pytest.mark.parametrize(("object_type", "metric"), list(reference_webhook_pairs()))
def test_every_reference_pair_maps_to_its_event(object_type, metric):
    has_delivery = object_type != "customer"
    event_type = event_type_for_webhook(object_type, metric, has_delivery=has_delivery)
    assert event_type is not None, (object_type, metric)
    expected = expected_event(object_type, metric, has_delivery=has_delivery)
    assert (event_type.name, event_type.channel.value, event_type.metric.value) == (
        expected.name,
        expected.channel,
        expected.metric,
    )
    assert event_type.semantic is (expected.name in seed_event_names())


def test_the_accepted_pairs_are_the_reference_pairs():
    accepted = {(object_type, metric) for object_type, metric, _ in catalog.webhook_pairs()}
    assert accepted == set(reference_webhook_pairs())
    for object_type, metric, event_type in catalog.webhook_pairs():
        has_delivery = object_type != "customer"
        assert event_type_for_webhook(object_type, metric, has_delivery=has_delivery) is event_type


def test_every_catalogue_event_is_reachable_from_a_webhook():
    # Nothing in the catalogue is dead: every name is what some webhook pair becomes.
    reached = {event_type.name for _, _, event_type in catalog.webhook_pairs()}
    assert reached == {e.name for e in EVENT_TYPES}


@pytest.mark.parametrize(
    ("object_type", "metric", "name"),
    [
        ("email", "clicked", "Email Link Clicked"),
        ("push", "clicked", "Push Link Clicked"),
        ("sms", "clicked", "SMS Link Clicked"),
        ("webhook", "clicked", "Webhook Link Clicked"),
        ("slack", "clicked", "Slack Link Clicked"),
        ("in_app", "clicked", "In-App Clicked"),
        ("email", "dropped", "Email Suppressed"),
        ("push", "dropped", "Push Suppressed"),
        ("email", "spammed", "Email Marked as Spam"),
        ("customer", "subscribed", "Subscribed"),
        ("customer", "unsubscribed", "Unsubscribed"),
        ("customer", "cio_subscription_preferences_changed", "Subscription Preferences Changed"),
    ],
)
def test_documented_special_cases(object_type, metric, name):
    event_type = event_type_for_webhook(object_type, metric, has_delivery=object_type != "customer")
    assert event_type is not None
    assert event_type.name == name
    assert event_type.semantic is True


def test_email_unsubscribed_is_message_level_only_with_a_delivery():
    with_delivery = event_type_for_webhook("email", "unsubscribed", has_delivery=True)
    without = event_type_for_webhook("email", "unsubscribed", has_delivery=False)
    assert with_delivery is not None and without is not None
    assert (with_delivery.name, with_delivery.channel) == ("Email Unsubscribed", Channel.EMAIL)
    assert (without.name, without.channel) == ("Unsubscribed", Channel.SUBSCRIPTION)


@pytest.mark.parametrize("object_type", ["customer", "email", "push", "sms", "in_app", "whatsapp"])
@pytest.mark.parametrize(
    ("metric", "name"),
    [
        ("subscribed", "Subscribed"),
        ("cio_subscription_preferences_changed", "Subscription Preferences Changed"),
    ],
)
def test_person_level_events_keep_their_name_whatever_channel_triggered_them(
    object_type, metric, name
):
    for has_delivery in (False, True):
        event_type = event_type_for_webhook(object_type, metric, has_delivery=has_delivery)
        assert event_type is not None and event_type.name == name


@pytest.mark.parametrize("object_type", ["sms", "push", "whatsapp", "in_app"])
def test_unsubscribe_triggered_by_a_non_email_delivery_is_the_person_level_event(object_type):
    # Only email has a message-level unsubscribe; a STOP reply to an SMS is still a change to
    # the person's subscription and must not be lost.
    event_type = event_type_for_webhook(object_type, "unsubscribed", has_delivery=True)
    assert event_type is not None and event_type.name == "Unsubscribed"


@pytest.mark.parametrize(
    ("object_type", "metric"),
    [
        ("sms", "opened"),  # not a metric SMS has
        ("customer", "sent"),  # people are not sent anything
        ("fax", "sent"),
        ("fax", "subscribed"),
        ("email", "exploded"),
        ("Email", "sent"),  # Customer.io's vocabulary is lower case
        ("", ""),
    ],
)
def test_unknown_pairs_map_to_nothing(object_type, metric):
    for has_delivery in (False, True):
        assert event_type_for_webhook(object_type, metric, has_delivery=has_delivery) is None


# ------------------------------------------------------------------------------------------
# Names outside the seed
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("object_type", "metric", "name"),
    [
        ("whatsapp", "sent", "WhatsApp Sent"),
        ("whatsapp", "clicked", "WhatsApp Link Clicked"),
        ("whatsapp", "dropped", "WhatsApp Suppressed"),
        ("whatsapp", "replied", "WhatsApp Replied"),
        ("email", "undeliverable", "Email Undeliverable"),
        ("email", "deferred", "Email Deferred"),
        ("push", "undeliverable", "Push Undeliverable"),
        ("sms", "replied", "SMS Replied"),
        ("sms", "dropped", "SMS Suppressed"),
        ("sms", "undeliverable", "SMS Undeliverable"),
        ("in_app", "undeliverable", "In-App Undeliverable"),
        ("slack", "converted", "Slack Converted"),
        ("slack", "undeliverable", "Slack Undeliverable"),
        ("webhook", "undeliverable", "Webhook Undeliverable"),
    ],
)
def test_metrics_without_a_seed_name_are_named_like_the_others_and_flagged(
    object_type, metric, name
):
    event_type = event_type_for_webhook(object_type, metric, has_delivery=True)
    assert event_type is not None
    assert event_type.name == name
    assert event_type.semantic is False
    assert event_type_by_name(name) is event_type


def test_every_name_outside_the_seed_follows_the_seed_wording():
    # The wording of each metric, learnt from the seed ("Link Clicked", "Suppressed", ...).
    wording: dict[str, str] = {}
    for label, name in _seed_rows():
        if label != "Subscription":
            wording.setdefault(_seed_metric(label, name), name.removeprefix(label + " "))
    outside = [e for e in EVENT_TYPES if not e.semantic]
    assert outside, "the catalogue should keep the webhook metrics the seed does not name"
    for event_type in outside:
        label = CHANNEL_LABELS[event_type.channel]
        metric = event_type.metric.value
        assert event_type.name == f"{label} {wording.get(metric, metric.title())}"


# ------------------------------------------------------------------------------------------
# Lookup by name
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "name"),
    [
        ("Email Opened", "Email Opened"),
        ("email opened", "Email Opened"),
        ("EMAIL LINK CLICKED", "Email Link Clicked"),
        ("  in-app clicked  ", "In-App Clicked"),
        ("sms link clicked", "SMS Link Clicked"),
        ("subscription preferences changed", "Subscription Preferences Changed"),
        ("whatsapp sent", "WhatsApp Sent"),
    ],
)
def test_event_type_by_name_ignores_case(given, name):
    event_type = event_type_by_name(given)
    assert event_type is not None and event_type.name == name


@pytest.mark.parametrize("event_type", EVENT_TYPES, ids=lambda e: e.name)
def test_every_name_is_found_in_any_case(event_type):
    for spelling in (event_type.name, event_type.name.lower(), event_type.name.upper()):
        assert event_type_by_name(spelling) is event_type


@pytest.mark.parametrize(
    "name", ["", "Email", "Email Open", "Order Completed", "In-App Link Clicked", "Email_Opened"]
)
def test_unknown_names_are_not_found(name):
    assert event_type_by_name(name) is None


def test_the_catalogue_endpoint_serves_the_catalogue(client, db):
    body = client.get("/api/catalog").json()
    assert [(e["name"], e["channel"], e["metric"], e["semantic"]) for e in body["events"]] == [
        (e.name, e.channel.value, e.metric.value, e.semantic) for e in EVENT_TYPES
    ]
    served_pairs = {(p["object_type"], p["metric"]) for p in body["webhook_pairs"]}
    assert served_pairs == set(reference_webhook_pairs())
