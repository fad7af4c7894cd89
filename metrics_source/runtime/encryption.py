"""Secrets at rest: signing secrets and destination credentials are stored encrypted with
Fernet (cryptography's authenticated AES, the keys from the environment).

``SECRETS_ENCRYPTION_KEYS`` lists Fernet keys, newest first: the first encrypts, every one
decrypts (MultiFernet), so a key rotates by putting a new one in front, running
``manage.py secrets_reencrypt``, then dropping the old one. Without it, one key is derived
from ``SECRET_KEY`` (so `make run` needs no setting; production should set its own, since
rotating ``SECRET_KEY`` would then lose the secrets).

Stored values carry a prefix, so a value that is not one (an empty secret) stays readable.
"""

from __future__ import annotations

import base64
import hashlib
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

PREFIX = "fernet:"


@cache
def _fernet(keys: tuple[str, ...], secret_key: str) -> MultiFernet:
    if not keys:
        derived = hashlib.sha256(b"metrics-source secrets at rest\0" + secret_key.encode())
        keys = (base64.urlsafe_b64encode(derived.digest()).decode(),)
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except ValueError:
        raise ImproperlyConfigured(
            "SECRETS_ENCRYPTION_KEYS must be comma-separated Fernet keys (32 url-safe base64 "
            "bytes each; make one with `python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'`)"
        ) from None


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.SECRETS_ENCRYPTION_KEYS), settings.SECRET_KEY)


def is_encrypted(value: str) -> bool:
    return value.startswith(PREFIX)


def encrypt(value: str) -> str:
    """The stored form of a secret; an empty one (no secret) stays empty."""
    if not value or is_encrypted(value):
        return value
    return PREFIX + fernet().encrypt(value.encode()).decode()


def decrypt(value: str) -> str:
    """The secret of a stored value (a value stored before encryption is returned as is)."""
    if not is_encrypted(value):
        return value
    try:
        return fernet().decrypt(value[len(PREFIX) :].encode()).decode()
    except InvalidToken:
        raise ImproperlyConfigured(
            "a stored secret cannot be decrypted with SECRETS_ENCRYPTION_KEYS (or, without it, "
            "the key derived from SECRET_KEY): was a key dropped before secrets_reencrypt ran?"
        ) from None


def reencrypt(value: str) -> str:
    """The stored value under the newest key."""
    if not is_encrypted(value):
        return encrypt(value)
    return PREFIX + fernet().rotate(value[len(PREFIX) :].encode()).decode()
