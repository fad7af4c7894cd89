"""Standard Webhooks signatures (standardwebhooks.com): HMAC-SHA256 of id.timestamp.body."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

PREFIX = "whsec_"


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key: the base64 part of a whsec_ secret (ValueError when it is not one)."""
    if not secret.startswith(PREFIX):
        raise ValueError("a signing secret starts with whsec_")
    try:
        return base64.b64decode(secret[len(PREFIX) :], validate=True)
    except ValueError:
        raise ValueError("a signing secret is whsec_ followed by base64") from None


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(secrets_: list[str], message_id: str, timestamp: int, body: bytes) -> str:
    """Space-separated signatures, one per secret: receivers accept any, so a secret can be
    rotated without a gap."""
    return " ".join(signature(s, message_id, timestamp, body) for s in secrets_ if s)
