"""Realistic inputs for tests: Customer.io reporting-webhook payloads and SDK track calls.

The reference documents (Customer.io's semantic event list and its reporting-webhook facts)
are read at test time, so a test built on them fails when the code drifts from them. The
payload builders follow the reference's "Fields under data" tables: each delivery has exactly
one parent (campaign, API-triggered broadcast, newsletter or transactional message) and the
fields its channel and metric carry.

One module on purpose (over 400 lines): every test builds its inputs with these builders, so the
reference's rules are encoded once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import orjson

# --------------------------------------------------------------------------------------
# The reference documents
# --------------------------------------------------------------------------------------

SEED_FILE = "journeys-message-metrics-source.md"
WEBHOOKS_FILE = "customerio-reporting-webhooks.md"
_REPO = Path(__file__).resolve().parent.parent


REFERENCE_DIR = _REPO / "docs" / "reference"


@cache
def reference_text(name: str) -> str:
    """A reference document: the event formats and wire protocols the mapping follows."""
    return (REFERENCE_DIR / name).read_text(encoding="utf-8")


def _section(text: str, heading: str) -> str:
    """The body of the markdown section whose heading starts with ``heading``."""
    match = re.search(rf"^(#+) {re.escape(heading)}.*$", text, flags=re.MULTILINE)
    if match is None:
        raise AssertionError(f"no section {heading!r} in the reference")
    level = len(match.group(1))
    rest = text[match.end() :]
    end = re.search(rf"^#{{1,{level}}} ", rest, flags=re.MULTILINE)
    return rest[: end.start()] if end else rest


@cache
def seed_channel_table() -> dict[str, tuple[str, ...]]:
    """Channel label -> event names, from the seed's first listing (a channel / events table
    flattened into alternating lines); the "Available Events" list must agree with it."""
    body = _section(reference_text(SEED_FILE), "What metrics do we send")
    lines = [line.strip() for line in body.splitlines() if line.strip()]
    start = lines.index("Events") + 1
    labels, lists = lines[start::2], lines[start + 1 :: 2]
    return {
        label: tuple(name.strip() for name in names.split(","))
        for label, names in zip(labels, lists, strict=True)
    }


@cache
def seed_events() -> dict[str, tuple[str, ...]]:
    """Channel label -> event names, from the seed's "Available Events" bullet list."""
    body = _section(reference_text(SEED_FILE), "Available Events")
    events: dict[str, tuple[str, ...]] = {}
    for label, names in re.findall(r"^\*\s+\*\*(.+?)\*\*:\s*(.+)$", body, flags=re.MULTILINE):
        events[label.strip()] = tuple(name.strip() for name in names.split(","))
    if not events:
        raise AssertionError("the seed's Available Events list is empty or unreadable")
    return events


def _table_rows(body: str) -> list[list[str]]:
    rows = []
    for line in body.splitlines():
        line = line.strip()
        if not line.startswith("|"):
            continue
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if all(set(cell) <= set("-: ") for cell in cells):
            continue  # the separator under the header
        rows.append(cells)
    return rows[1:]  # without the header


@cache
def reference_webhook_pairs() -> dict[tuple[str, str], bool]:
    """(object_type, metric) -> has a payload schema, from "Metrics by object_type" (both
    columns)."""
    pairs: dict[tuple[str, str], bool] = {}
    body = _section(reference_text(WEBHOOKS_FILE), "Metrics by object_type")
    for object_type, with_schema, without_schema in _table_rows(body):
        for metrics, has_schema in ((with_schema, True), (without_schema, False)):
            for metric in filter(None, (m.strip() for m in metrics.split(","))):
                pairs[(object_type, metric)] = has_schema
    if not pairs:
        raise AssertionError("the reference's Metrics by object_type table is unreadable")
    return pairs


@cache
def official_webhook_examples() -> tuple[dict[str, Any], ...]:
    """The JSON payloads under "Official examples" in the webhook reference."""
    body = _section(reference_text(WEBHOOKS_FILE), "Official examples")
    blocks = re.findall(r"```json\n(.*?)```", body, flags=re.DOTALL)
    return tuple(orjson.loads(block) for block in blocks)


@cache
def seed_track_examples() -> dict[str, dict[str, Any]]:
    """Event name -> the example track event the seed shows for it."""
    text = reference_text(SEED_FILE)
    examples = {}
    for block in re.findall(r"```json\n(.*?)```", text, flags=re.DOTALL):
        event = orjson.loads(block)
        examples[event["event"]] = event
    return examples


# --------------------------------------------------------------------------------------
# Reporting-webhook payloads
# --------------------------------------------------------------------------------------

PARENT_KINDS = ("campaign", "broadcast", "newsletter", "transactional")
# Transactional messages exist for email and push only.
TRANSACTIONAL_CHANNELS = frozenset({"email", "push"})
PERSON_METRICS = frozenset({"subscribed", "unsubscribed", "cio_subscription_preferences_changed"})

# A fixed moment (2021-02-11T17:04:49Z) so expected timestamps can be written by hand.
TIMESTAMP = 1613063089
TIMESTAMP_ISO = "2021-02-11T17:04:49.000Z"
JOURNEY_ID = "01GW1HE2Z7K9Q5DX8B0R3T6YVM"


@dataclass(frozen=True)
class Person:
    """Who a payload is about, as Customer.io identifies people."""

    id: str | None = "42"
    email: str | None = "cool.person@example.com"
    cio_id: str | None = "d9c106000001"
    customer_id: str = "42"

    def identifiers(self) -> dict[str, Any]:
        identifiers: dict[str, Any] = {"id": self.id, "email": self.email}
        if self.cio_id is not None:
            identifiers["cio_id"] = self.cio_id
        return identifiers


PERSON = Person()
# Multi-identifier workspace, person known only by email: anonymousId becomes the email.
EMAIL_ONLY_PERSON = Person(id=None, email="only.email@example.com", customer_id="")
# A person whose customer_id (deprecated) differs from the workspace identifier.
LEGACY_PERSON = Person(id="42", email="test@example.com", customer_id="0200000001")


def parent_fields(kind: str, *, seed: int = 0) -> dict[str, Any]:
    """The parent ids a delivery carries (reference: "Parent-dependent ids")."""
    if kind == "campaign":
        return {
            "campaign_id": 31 + seed,
            "action_id": 96 + seed,
            "journey_id": JOURNEY_ID,
            "parent_action_id": 95 + seed,
            "trigger_event_id": "01GW1HE2Z7TRIGGEREVENT0001",
        }
    if kind == "broadcast":
        return {
            "trigger_id": 7 + seed,
            "broadcast_id": 9 + seed,
            "action_id": 42 + seed,
            "journey_id": JOURNEY_ID,
        }
    if kind == "newsletter":
        return {"newsletter_id": 12 + seed, "content_id": 3 + seed}
    if kind == "transactional":
        return {"transactional_message_id": 8 + seed}
    raise ValueError(f"unknown parent kind {kind!r}")


def parent_kinds_for(object_type: str) -> tuple[str, ...]:
    if object_type == "customer":
        return ()
    if object_type in TRANSACTIONAL_CHANNELS:
        return PARENT_KINDS
    return PARENT_KINDS[:3]


_FAILURE_METRICS = frozenset({"attempted", "failed", "undeliverable", "bounced", "dropped"})
_PHONE = "+15551234567"


def _recipients(metric: str) -> list[dict[str, Any]]:
    ios = {"device_id": "f1e2d3c4b5a6", "device_platform": "ios"}
    android = {"device_id": "cKx0-android-token", "device_platform": "android"}
    if metric in ("bounced", "dropped"):
        android["failure_message"] = "Device token is no longer valid"
    return [ios, android]


def metric_fields(object_type: str, metric: str, *, person: Person = PERSON) -> dict[str, Any]:
    """The fields a channel and metric carry under ``data`` (reference: "Metric-specific
    fields"); metrics listed without a schema get the fields of their closest relative."""
    email = person.email or "someone@example.com"
    failure = {"failure_message": f"{object_type} {metric}: the provider refused the message"}
    if object_type == "email":
        fields: dict[str, Any] = {"recipient": email, "subject": "Password reset request"}
        if metric == "sent":
            fields["content"] = "<p>Hello</p>"
            fields["headers"] = {"X-Mailer": ["Customer.io"], "List-Unsubscribe": ["<mailto:u>"]}
        elif metric == "opened":
            fields.update(proxied=False, prefetched=True, synthetic=False)
        elif metric == "clicked":
            fields.update(href="https://example.com/reset?t=1", link_id=17, machine=False)
        elif metric in ("attempted", "failed"):
            return {"subject": "Password reset request", **failure}
        elif metric in ("bounced", "dropped", "undeliverable", "deferred"):
            fields.update(failure)
        return fields
    if object_type == "push":
        if metric in ("attempted", "failed", "undeliverable"):
            return failure
        if metric == "drafted":
            return {}
        fields = {"recipients": _recipients(metric)}
        if metric == "clicked":
            fields.update(href="myapp://offers/12", link_id=5)
        elif metric == "sent":
            fields["content"] = '{"title":"Hi","body":"An offer"}'
        return fields
    if object_type in ("sms", "whatsapp"):
        if metric in ("attempted", "failed", "undeliverable"):
            return failure
        if metric == "drafted":
            return {}
        fields = {"recipient": _PHONE}
        if metric == "clicked":
            fields.update(href="https://example.com/s/12", link_id=4)
        elif metric in ("bounced", "dropped"):
            fields.update(failure)
        elif metric == "replied":
            fields.update(inbound_event_id="01GW1HINBOUND00000000000001", to="+15557654321")
        elif metric == "sent":
            fields["content"] = "Your code is 123456"
        return fields
    if object_type == "in_app":
        if metric in ("attempted", "failed", "undeliverable"):
            return failure
        if metric == "drafted":
            return {}
        fields = {"recipient": person.id or email}
        if metric == "clicked":
            fields.update(href="https://example.com/promo", link_id=2, tracked_response="Yes")
        return fields
    if object_type in ("slack", "webhook"):
        if metric in ("attempted", "failed", "undeliverable"):
            return failure
        if metric == "drafted":
            return {}
        recipient = "#growth" if object_type == "slack" else "https://hooks.example.com/in/42"
        fields = {"recipient": recipient}
        if metric == "clicked":
            fields.update(href="https://example.com/report", link_id=9)
        elif metric == "sent":
            fields["content"] = '{"text":"Weekly report"}'
        return fields
    raise ValueError(f"no message fields for {object_type!r}")


def person_fields(metric: str, *, person: Person = PERSON) -> dict[str, Any]:
    """Fields of a person-level subscription event."""
    fields: dict[str, Any] = {"email_address": person.email or "someone@example.com"}
    if metric == "cio_subscription_preferences_changed":
        fields["content"] = '{"topics":{"topic_7":false}}'
    return fields


def delivery_id_for(object_type: str, metric: str, parent: str) -> str:
    # Base64-like, with the characters real ids contain (=, _, -).
    return f"RPILAgUBcRhI-{object_type}_{metric}_{parent}=="


@dataclass(frozen=True)
class WebhookCase:
    """A payload and the parts it was built from, so tests can write what to expect."""

    object_type: str
    metric: str
    parent: str | None
    person: Person
    payload: dict[str, Any]
    data_without_identifiers: dict[str, Any] = field(default_factory=dict)

    @property
    def event_id(self) -> str:
        return self.payload["event_id"]

    def __str__(self) -> str:  # readable pytest ids
        return f"{self.object_type}.{self.metric}" + (f"[{self.parent}]" if self.parent else "")


def webhook_payload(
    object_type: str,
    metric: str,
    *,
    parent: str | None = "campaign",
    person: Person = PERSON,
    event_id: str | None = None,
    timestamp: int = TIMESTAMP,
    message_level: bool | None = None,
) -> WebhookCase:
    """A realistic reporting-webhook payload for one (object_type, metric) pair.

    Person-level subscription metrics carry no delivery; ``message_level=True`` builds an
    email ``unsubscribed`` that came from a delivery (with delivery_id, recipient, subject).
    """
    person_level = metric in PERSON_METRICS and not message_level
    data: dict[str, Any] = {"customer_id": person.customer_id}
    if person_level:
        data.update(person_fields(metric, person=person))
    else:
        assert parent is not None, "a message-level event has one parent"
        data["delivery_id"] = delivery_id_for(object_type, metric, parent)
        data.update(parent_fields(parent))
        data.update(metric_fields(object_type, metric, person=person))
    without_identifiers = dict(data)
    data["identifiers"] = person.identifiers()
    payload = {
        "event_id": event_id or f"01E4C4CT6Y-{object_type}-{metric}-{parent or 'person'}",
        "object_type": object_type,
        "metric": metric,
        "timestamp": timestamp,
        "data": data,
    }
    return WebhookCase(
        object_type,
        metric,
        None if person_level else parent,
        person,
        payload,
        without_identifiers,
    )


def all_webhook_cases() -> list[WebhookCase]:
    """One payload for every pair the reference lists, under every parent kind it can have."""
    cases = []
    for object_type, metric in reference_webhook_pairs():
        if object_type == "customer":
            cases.append(webhook_payload(object_type, metric, parent=None))
            continue
        for parent in parent_kinds_for(object_type):
            cases.append(webhook_payload(object_type, metric, parent=parent))
    return cases


# --------------------------------------------------------------------------------------
# The expected semantic naming, written from the reference's mapping table
# --------------------------------------------------------------------------------------

CHANNEL_LABELS = {
    "email": "Email",
    "push": "Push",
    "sms": "SMS",
    "in_app": "In-App",
    "webhook": "Webhook",
    "slack": "Slack",
    "whatsapp": "WhatsApp",
}
_PERSON_EVENT_NAMES = {
    "subscribed": "Subscribed",
    "unsubscribed": "Unsubscribed",
    "cio_subscription_preferences_changed": "Subscription Preferences Changed",
}
_WORDING = {"clicked": "Link Clicked", "dropped": "Suppressed", "spammed": "Marked as Spam"}
# The catalogue's metric for each webhook metric that is not spelled the same.
_METRIC_VALUES = {
    "dropped": "suppressed",
    "cio_subscription_preferences_changed": "preferences_changed",
}


@dataclass(frozen=True)
class Expected:
    name: str
    channel: str
    metric: str


def expected_event(object_type: str, metric: str, *, has_delivery: bool) -> Expected:
    """The event a webhook pair must become, per the reference's mapping rules."""
    if metric in _PERSON_EVENT_NAMES and not (
        metric == "unsubscribed" and object_type == "email" and has_delivery
    ):
        return Expected(
            _PERSON_EVENT_NAMES[metric], "subscription", _METRIC_VALUES.get(metric, metric)
        )
    wording = _WORDING.get(metric, metric.title())
    if object_type == "in_app" and metric == "clicked":
        wording = "Clicked"
    return Expected(
        f"{CHANNEL_LABELS[object_type]} {wording}",
        object_type,
        _METRIC_VALUES.get(metric, metric),
    )


def seed_event_names() -> frozenset[str]:
    return frozenset(name for names in seed_events().values() for name in names)


# --------------------------------------------------------------------------------------
# Track calls
# --------------------------------------------------------------------------------------


def track_call(event: str, *, message_id: str, user_id: str = "42", **extra: Any) -> dict:
    """A track call as an SDK sends it for one message-activity event."""
    call: dict[str, Any] = {
        "type": "track",
        "event": event,
        "userId": user_id,
        "messageId": message_id,
        "timestamp": "2023-08-22T16:42:55.003Z",
        "context": {"traits": {"email": "cool.person@example.com"}, "library": {"name": "t"}},
        "properties": {
            "customer_id": user_id,
            "delivery_id": "RKK4AwUAAYoeIC5PHMYd6-vTAYhWkQ==",
            "campaign_id": 31,
            "action_id": 96,
            "journey_id": JOURNEY_ID,
            "userId": user_id,
        },
    }
    call.update(extra)
    return call
