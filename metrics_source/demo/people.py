"""The demo workspace's people: names, addresses, phones, devices and how engaged each is.

A person is computed from their index, never stored, so a pool of a quarter of a million
costs no memory; the same index always gives the same person.
"""

from __future__ import annotations

from dataclasses import dataclass

_FIRST = (
    "ada", "alan", "amir", "ana", "ben", "bia", "carl", "chen", "dana", "eli", "emma",
    "femi", "gia", "hana", "ian", "ines", "jon", "kai", "lea", "lin", "maya", "mia", "noah",
    "nora", "omar", "pia", "raj", "rosa", "sam", "sara", "tom", "uma", "vic", "wen", "yara",
    "yuki", "zoe", "luca", "ivan",
)  # fmt: skip
_LAST = (
    "adams", "baker", "costa", "diaz", "evans", "fischer", "garcia", "haddad", "ito",
    "jones", "khan", "lopez", "meyer", "nguyen", "okafor", "patel", "quinn", "rossi",
    "silva", "tanaka", "ueda", "vance", "wright", "xu", "young", "zimmer", "moreau",
    "novak", "larsen", "berg", "kowalski", "dubois", "santos", "murphy", "kim", "park",
    "lee",
)  # fmt: skip
_DOMAINS = ("example.com", "example.org", "example.net", "mail.example.com", "inbox.example")
# Per-person engagement, mean 1: some people open everything, some nothing.
_ENGAGEMENT = (0.25, 0.55, 0.8, 0.95, 1.05, 1.2, 1.4, 1.8)


@dataclass(frozen=True, slots=True)
class Person:
    customer_id: str
    email: str
    phone: str
    device_id: str
    device_platform: str
    engagement: float


def person(index: int) -> Person:
    """The index-th person of the pool, computed, never stored (the pool can be large)."""
    scrambled = (index * 2654435761) & 0xFFFFFFFF
    first = _FIRST[index % len(_FIRST)]
    last = _LAST[(index // len(_FIRST)) % len(_LAST)]
    return Person(
        customer_id=str(100_000 + index),
        email=f"{first}.{last}{index}@{_DOMAINS[scrambled % len(_DOMAINS)]}",
        phone=f"+1555{index:07d}",
        device_id=f"{scrambled:08x}-{index:06x}-4f1c-9a2e-{(scrambled >> 3):012x}"[:36],
        device_platform="ios" if scrambled % 5 < 2 else "android",
        engagement=_ENGAGEMENT[(scrambled >> 9) % len(_ENGAGEMENT)],
    )


def pool_size(events: int) -> int:
    """People in the workspace: enough that each gets a handful of messages."""
    return max(200, min(250_000, events // 20))
