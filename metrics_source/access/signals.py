"""Sign-ins, sign-outs and failed sign-ins go in the audit log (django-axes counts the
failures for lockout); the built-in roles are reset after each ``migrate``."""

from __future__ import annotations

import logging
from typing import Any

from django.apps import AppConfig
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import post_migrate
from django.http import HttpRequest

from metrics_source.access.audit import audit_record
from metrics_source.access.models import AuditAction
from metrics_source.access.roles import roles_sync

log = logging.getLogger("metrics_source.access")


def _signed_in(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if request is not None:
        audit_record(action=AuditAction.LOGIN, request=request)


def _signed_out(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if request is not None and user is not None:
        audit_record(action=AuditAction.LOGOUT, request=request, actor=user.get_username())


def _sign_in_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    # Django has already masked the password in ``credentials``; only the name is kept.
    typed = str(credentials.get("username", ""))[:150]
    entry = audit_record(action=AuditAction.LOGIN_FAILED, request=request, actor=typed)
    log.warning("sign-in failed for %r from %s", typed, entry.ip_address or "an unknown address")


def _reset_roles(sender: AppConfig, **kwargs: Any) -> None:
    roles_sync()


def connect(app_config: AppConfig) -> None:
    user_logged_in.connect(_signed_in, dispatch_uid="audit-login")
    user_logged_out.connect(_signed_out, dispatch_uid="audit-logout")
    user_login_failed.connect(_sign_in_failed, dispatch_uid="audit-login-failed")
    post_migrate.connect(_reset_roles, sender=app_config, dispatch_uid="reset-roles")
