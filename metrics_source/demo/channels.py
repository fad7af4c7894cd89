"""How a delivery goes on each channel, as data: its rates, delays and failure messages.

One ``Funnel`` per channel says what can happen after a message is created (suppressed or failed
before sending, sent, bounced, delivered, opened, clicked, converted, unsubscribed, marked as
spam), how likely each step is and how long it takes, and what the failures say. The one
generator in ``funnel`` walks any of them; a channel differs from another here only.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from itertools import accumulate

from metrics_source.ingest.catalog import Channel

DAY = 86400.0


@dataclass(frozen=True, slots=True)
class Uniform:
    """A delay in seconds, equally likely anywhere between low and high."""

    low: float
    high: float

    def draw(self, rng: random.Random) -> float:
        return rng.uniform(self.low, self.high)


@dataclass(frozen=True, slots=True)
class LogNormal:
    """A delay in seconds with a long tail (people get to messages minutes or days later),
    cut at ``cap``."""

    mu: float
    sigma: float
    cap: float = float("inf")

    def draw(self, rng: random.Random) -> float:
        return min(rng.lognormvariate(self.mu, self.sigma), self.cap)


Delay = Uniform | LogNormal

# A conversion comes hours to days after the click that led to it, on every channel.
CONVERT_DELAY = LogNormal(9.8, 1.1, 6 * DAY)


@dataclass(frozen=True, slots=True)
class Rates:
    """Ranges each message draws its own rates from (None: the channel has no such step)."""

    open: tuple[float, float] | None = None
    click: tuple[float, float] = (0.01, 0.05)
    bounce: tuple[float, float] | None = None
    machine_open: tuple[float, float] | None = None
    convert: tuple[float, float] = (0.15, 0.4)


@dataclass(frozen=True, slots=True)
class Failures:
    """A share of deliveries and the messages their failure gives, most likely first when
    ``weights`` are given (equally likely otherwise)."""

    share: float
    messages: tuple[str, ...]
    weights: tuple[float, ...] = ()
    cum_weights: tuple[float, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        if self.weights:
            object.__setattr__(self, "cum_weights", tuple(accumulate(self.weights)))

    def pick(self, rng: random.Random) -> str:
        if self.cum_weights:
            return rng.choices(self.messages, cum_weights=self.cum_weights)[0]
        return rng.choice(self.messages)


@dataclass(frozen=True, slots=True)
class Opens:
    """When a delivered message is opened, and by whom."""

    delay: Delay
    by_engagement: bool = True  # engaged people open more
    again: float = 0.0  # share of opens followed by another one later
    # Mail privacy proxies fetch a share of messages (the message's machine-open rate) within
    # minutes; ``proxied`` is the share flagged proxied rather than prefetched.
    machine_delay: Delay | None = None
    machine_again: float = 0.0  # share of machine opens the person opens later too
    proxied: float = 0.0
    flagged: bool = False  # the opens carry prefetched/proxied


@dataclass(frozen=True, slots=True)
class Clicks:
    """A click on one of the message's links, after it was opened (or delivered, or sent,
    on channels that track no opens)."""

    delay: Delay
    # The chance of a click is ``share`` of the message's click rate; after an open, of the
    # click rate over the open rate (so clicks per delivery keep the click rate).
    share: float = 1.0
    again: float = 0.0  # share of clicks followed by a second one
    again_delay: Delay = Uniform(10, 900)
    scanners: float = 0.0  # share of the click rate that link scanners add after delivery
    scanner_delay: Delay = Uniform(1, 30)
    flagged: bool = False  # the clicks carry machine
    tracked_response: bool = False  # the clicks name the call to action that was chosen
    converts: bool = True
    converts_unclicked: float = 0.0  # share of opens that convert without a click


@dataclass(frozen=True, slots=True)
class Unsubscribes:
    """A person who leaves after a message: from its topic (the channel's own event) and, for
    ``everywhere`` of them, from every topic (a person-level Unsubscribed)."""

    share: float
    delay: Delay
    after_open: bool  # after the open, else after delivery
    channel_event: bool
    everywhere: float
    object_type: str


@dataclass(frozen=True, slots=True)
class Funnel:
    """Everything that can happen to one delivery on ``channel``, in the order it happens."""

    channel: Channel
    rates: Rates
    failed: Failures  # never sent (an invalid template, an expired credential, ...)
    suppressed: Failures | None = None  # never sent, on purpose (a suppression list)
    # Failed only after an attempt (the attempt's message, then the failure's, later); the
    # same attempt messages mark a soft failure of ``retried`` deliveries, sent on retry.
    attempts: tuple[str, ...] = ()
    fail_after: Delay = Uniform(300, 3600)
    retried: float = 0.0
    retry_delay: Delay = Uniform(300, 1800)
    send_delay: Delay = Uniform(0.2, 2.0)
    content_on_sent: bool = False  # the Sent event carries the message's text
    # Sent, then bounced (the message's bounce rate decides, not ``bounces.share``), delivered,
    # or still on its way; None: nothing is ever "delivered" on this channel.
    bounces: Failures | None = None
    bounce_delay: Delay = Uniform(0.5, 10)
    in_flight: float = 0.0
    deliver_delay: Delay = Uniform(0.3, 6)
    opens: Opens | None = None
    clicks: Clicks | None = None
    unsubscribes: Unsubscribes | None = None
    spam: float = 0.0  # share of deliveries marked as spam
    spam_delay: Delay = Uniform(600, DAY)


EMAIL = Funnel(
    channel=Channel.EMAIL,
    rates=Rates(
        open=(0.22, 0.43), click=(0.022, 0.048), bounce=(0.01, 0.028), machine_open=(0.16, 0.29)
    ),
    suppressed=Failures(0.006, (
        "Address is on the suppression list after a previous hard bounce",
        "Recipient marked a previous message as spam",
        "Recipient unsubscribed from this topic",
    )),
    failed=Failures(0.003, (
        "Liquid error: undefined variable 'order.number' in template",
        "Sending domain northwind.example is not verified",
        "Recipient address is not a valid email address",
    )),
    attempts=(
        "421 4.7.0 Try again later, closing connection",
        "451 4.3.0 Mail server temporarily rejected message",
        "450 4.2.1 The user you are trying to contact is receiving mail too quickly",
    ),
    retried=0.008,
    send_delay=Uniform(0.2, 3.0),
    # "{email}": the recipient's address.
    bounces=Failures(0.0, (
        "550 5.1.1 The email account that you tried to reach does not exist",
        "550 5.1.1 <{email}>: Recipient address rejected: User unknown",
        "552 5.2.2 Mailbox full",
        "554 5.7.1 Message rejected: spam content",
        "550 5.7.26 Unauthenticated email from this domain is not accepted",
        "551 5.1.6 Recipient has moved; no forwarding address",
    ), weights=(0.48, 0.12, 0.17, 0.1, 0.08, 0.05)),
    bounce_delay=Uniform(2, 120),
    in_flight=0.01,  # deferred by the receiving server
    deliver_delay=LogNormal(1.5, 0.9),
    # Minutes to hours, a long tail into the next days.
    opens=Opens(
        delay=LogNormal(8.3, 1.3, 5 * DAY), again=0.3, machine_delay=Uniform(2, 300),
        machine_again=0.35, proxied=0.7, flagged=True,
    ),
    clicks=Clicks(
        delay=Uniform(5, 1800), share=0.92, again=0.25, scanners=0.08, flagged=True,
        converts_unclicked=0.01,
    ),
    unsubscribes=Unsubscribes(
        share=0.009, delay=Uniform(10, 600), after_open=True, channel_event=True,
        everywhere=0.6, object_type="email",
    ),
    spam=0.0008,
)  # fmt: skip

PUSH = Funnel(
    channel=Channel.PUSH,
    rates=Rates(open=(0.05, 0.12), click=(0.02, 0.05), bounce=(0.01, 0.03)),
    suppressed=Failures(0.005, ("Device has opted out of notifications", "App uninstalled")),
    failed=Failures(0.003, ("APNs certificate expired", "FCM server key is invalid")),
    bounces=Failures(0.0, (
        "Unregistered device token",
        "BadDeviceToken",
        "The registration token is not a valid FCM registration token",
        "DeviceTokenNotForTopic",
    )),
    in_flight=0.05,
    opens=Opens(delay=LogNormal(6.5, 1.6, 2 * DAY)),
    clicks=Clicks(delay=Uniform(1, 20)),
)  # fmt: skip

SMS = Funnel(
    channel=Channel.SMS,
    rates=Rates(click=(0.03, 0.09), bounce=(0.01, 0.03)),
    failed=Failures(0.004, (
        "Twilio error 21610: Attempt to send to unsubscribed recipient",
        "Twilio error 21211: Invalid 'To' phone number",
    )),
    content_on_sent=True,
    bounces=Failures(0.0, (
        "Carrier rejected: invalid number",
        "Unreachable destination handset",
        "Message filtered by carrier: suspected spam",
        "Landline or unreachable carrier",
    )),
    bounce_delay=Uniform(5, 300),
    in_flight=0.04,
    deliver_delay=LogNormal(2.5, 0.8),
    clicks=Clicks(delay=LogNormal(6.0, 1.5, DAY)),
    # A "STOP" reply.
    unsubscribes=Unsubscribes(
        share=0.003, delay=Uniform(30, 7200), after_open=False, channel_event=False,
        everywhere=1.0, object_type="sms",
    ),
)  # fmt: skip

# In-app, webhook and Slack: sent, then opened or clicked; nothing is "delivered".
IN_APP = Funnel(
    channel=Channel.IN_APP,
    rates=Rates(open=(0.3, 0.6), click=(0.05, 0.14)),
    failed=Failures(0.005, (
        "Message expired before it was displayed",
        "Liquid error in message body",
    )),
    # Shown when the person next opens the app.
    opens=Opens(delay=LogNormal(8.0, 1.6, 3 * DAY), by_engagement=False),
    clicks=Clicks(delay=Uniform(3, 3600), tracked_response=True),
)  # fmt: skip

WEBHOOK = Funnel(
    channel=Channel.WEBHOOK,
    rates=Rates(),
    failed=Failures(0.015, (
        "HTTP 500 Internal Server Error",
        "HTTP 404 Not Found",
        "Request timed out after 4 seconds",
        "Connection refused",
    )),
    clicks=Clicks(delay=Uniform(3, 3600)),
)  # fmt: skip

SLACK = Funnel(
    channel=Channel.SLACK,
    rates=Rates(),
    failed=Failures(0.01, ("channel_not_found", "not_in_channel", "invalid_auth", "rate_limited")),
    clicks=Clicks(delay=Uniform(3, 3600), converts=False),
)

FUNNELS = {funnel.channel: funnel for funnel in (EMAIL, PUSH, SMS, IN_APP, WEBHOOK, SLACK)}
