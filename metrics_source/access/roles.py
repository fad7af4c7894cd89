"""The built-in roles: Django groups whose permissions the code defines.

Each role holds everything the one before it does. The migration that introduced them
creates the groups; after every ``migrate`` their permissions are set to what this module
says (so a permission added later reaches its roles). A deployment that wants another mix
creates a group of its own: the built-in ones are reset on each migrate.
"""

from __future__ import annotations

from typing import Any

from metrics_source.access.permissions import EXPORT_CSV, VIEW_DASHBOARD, VIEW_PERSONAL_DATA

VIEWER, ANALYST, OPERATOR, ADMIN = "Viewer", "Analyst", "Operator", "Admin"


def _model_permissions(model: str, *actions: str) -> set[str]:
    app_label, name = model.split(".")
    return {f"{app_label}.{action}_{name}" for action in actions}


_EVERYTHING = ("view", "add", "change", "delete")

_VIEWER = {VIEW_DASHBOARD}
# People and single deliveries: the pages, the stored events in the admin, CSVs.
_ANALYST = (
    _VIEWER
    | {VIEW_PERSONAL_DATA, EXPORT_CSV}
    | _model_permissions("metrics_source.event", "view")
    | _model_permissions("metrics_source.messagename", "view")
)
# Forwarding: destinations and their actions (test event, pause, resume, replay need
# "change"), the ledger (replaying a delivery needs "change" on it), replay jobs.
_OPERATOR = (
    _ANALYST
    | _model_permissions("metrics_source.destination", *_EVERYTHING)
    | _model_permissions("metrics_source.delivery", "view", "change")
    | _model_permissions("metrics_source.deliveryattempt", "view")
    | _model_permissions("metrics_source.replayjob", "view")
    # Names of campaigns, actions and journeys, one by one or from a CSV.
    | _model_permissions("metrics_source.messagename", *_EVERYTHING)
)
# Sources and their keys, accounts and roles, the audit log.
_ADMIN = (
    _OPERATOR
    | _model_permissions("metrics_source.source", *_EVERYTHING)
    | _model_permissions("auth.user", *_EVERYTHING)
    | _model_permissions("auth.group", *_EVERYTHING)
    | _model_permissions("metrics_source.auditentry", "view")
    | _model_permissions("axes.accessattempt", "view", "delete")
    | _model_permissions("axes.accesslog", "view", "delete")
    | _model_permissions("axes.accessfailurelog", "view", "delete")
)

ROLES: dict[str, frozenset[str]] = {
    VIEWER: frozenset(_VIEWER),
    ANALYST: frozenset(_ANALYST),
    OPERATOR: frozenset(_OPERATOR),
    ADMIN: frozenset(_ADMIN),
}


def roles_sync(*, apps: Any = None) -> None:
    """Create the built-in groups if missing and set each one's permissions to ``ROLES``.
    Runs after ``migrate`` (``post_migrate``), when every permission exists."""
    if apps is None:
        from django.apps import apps as installed_apps

        apps = installed_apps
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    known = {
        f"{app_label}.{codename}": pk
        for pk, app_label, codename in permission_model.objects.values_list(
            "pk", "content_type__app_label", "codename"
        )
    }
    for name, permissions in ROLES.items():
        missing = sorted(permissions - known.keys())
        if missing:
            raise LookupError(f"role {name} names unknown permissions: {', '.join(missing)}")
        group, _ = group_model.objects.get_or_create(name=name)
        group.permissions.set([known[permission] for permission in permissions])
