"""Writing the audit log: one call per thing a person did, from the admin, a page or a
sign-in signal."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.http import HttpRequest

from metrics_source.access.addresses import client_address
from metrics_source.access.models import AuditAction, AuditEntry

_REPR_LENGTH = 200


def audit_record(
    *,
    action: AuditAction,
    request: HttpRequest | None = None,
    target: models.Model | None = None,
    target_type: str = "",
    target_id: str = "",
    actor: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry. The actor is the request's user unless ``actor`` names one (a failed
    sign-in's typed name); the address is the one sign-in throttling counts by, so the two
    logs agree. ``target`` is a model instance, or ``target_type``/``target_id`` name
    something that is not one (a person, a page)."""
    user = getattr(request, "user", None)
    signed_in = user is not None and user.is_authenticated
    entry = AuditEntry(
        action=action,
        actor_id=user.pk if signed_in and user is not None else None,
        actor=actor if actor is not None else (user.get_username() if signed_in and user else ""),
        ip_address=client_address(request) if request is not None else None,
        detail=detail or {},
        object_type=target_type,
        object_id=target_id,
    )
    if target is not None:
        entry.object_type = target._meta.label_lower
        entry.object_id = str(target.pk)
        entry.object_repr = str(target)[:_REPR_LENGTH]
    entry.save()
    return entry


def audit_each(
    *,
    action: AuditAction,
    request: HttpRequest,
    targets: Any,
    detail: dict[str, Any] | None = None,
) -> None:
    """One entry per object an admin action ran on."""
    for target in targets:
        audit_record(action=action, request=request, target=target, detail=detail)
