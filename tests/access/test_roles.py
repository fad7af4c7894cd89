"""The role x page x action matrix: every dashboard page, CSV download, admin list and admin
action against each built-in role, a staff account with no role, and a superuser.

The tables below are the expectation, written by hand: a page, model or action that is added
without a line here fails ``test_every_*_is_in_the_matrix``, so nothing new ships without a
declared permission and a decision about who gets it."""

from __future__ import annotations

from itertools import pairwise

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, User
from django.test import Client, RequestFactory
from django.urls import URLPattern

from dashboard import urls as dashboard_urls
from metrics_source.access.permissions import VIEW_DASHBOARD, VIEW_PERSONAL_DATA
from metrics_source.access.roles import ADMIN, ANALYST, OPERATOR, ROLES, VIEWER
from tests.dashboard.test_channel import ingest_sample

pytestmark = pytest.mark.django_db

# Least to most; None is a signed-in staff account with no role.
LADDER = [None, VIEWER, ANALYST, OPERATOR, ADMIN]

# Dashboard page (URL name) -> (a path to it, the permission its view declares, least role).
PAGES = {
    "overview": ("/", VIEW_DASHBOARD, VIEWER),
    "channels": ("/channels/", VIEW_DASHBOARD, VIEWER),
    "channel": ("/channels/email/", VIEW_DASHBOARD, VIEWER),
    "campaigns": ("/campaigns/", VIEW_DASHBOARD, VIEWER),
    "campaign": ("/campaigns/campaign/7/", VIEW_DASHBOARD, VIEWER),
    "deliveries": ("/deliveries/", VIEW_PERSONAL_DATA, ANALYST),
    "delivery": ("/deliveries/d1/", VIEW_PERSONAL_DATA, ANALYST),
    "person": ("/people/42/", VIEW_PERSONAL_DATA, ANALYST),
}
# Any page's CSV download needs the page's role and at least this one.
CSV_ROLE = ANALYST

# Admin model -> least role that sees its list.
ADMIN_MODELS = {
    "metrics_source.event": ANALYST,
    "metrics_source.messagename": ANALYST,
    "metrics_source.destination": OPERATOR,
    "metrics_source.delivery": OPERATOR,
    "metrics_source.deliveryattempt": OPERATOR,
    "metrics_source.replayjob": OPERATOR,
    "metrics_source.source": ADMIN,
    "metrics_source.auditentry": ADMIN,
    "auth.user": ADMIN,
    "auth.group": ADMIN,
    "axes.accessattempt": ADMIN,
    "axes.accessfailurelog": ADMIN,
    "axes.accesslog": ADMIN,
}
# (admin model, action) -> least role that may run it.
ADMIN_ACTIONS = {
    ("metrics_source.source", "rotate_write_key"): ADMIN,
    ("metrics_source.source", "end_write_key_grace"): ADMIN,
    ("metrics_source.source", "enable"): ADMIN,
    ("metrics_source.source", "disable"): ADMIN,
    ("metrics_source.source", "delete_selected"): ADMIN,
    ("metrics_source.destination", "send_test_event"): OPERATOR,
    ("metrics_source.destination", "pause"): OPERATOR,
    ("metrics_source.destination", "resume"): OPERATOR,
    ("metrics_source.destination", "replay_dead"): OPERATOR,
    ("metrics_source.destination", "replay_range"): OPERATOR,
    ("metrics_source.destination", "delete_selected"): OPERATOR,
    ("metrics_source.delivery", "replay"): OPERATOR,
    ("metrics_source.messagename", "delete_selected"): OPERATOR,
    ("auth.user", "delete_selected"): ADMIN,
    ("auth.group", "delete_selected"): ADMIN,
    ("axes.accessattempt", "delete_selected"): ADMIN,
    ("axes.accessattempt", "cleanup_expired_attempts"): ADMIN,
    ("axes.accessfailurelog", "delete_selected"): ADMIN,
    ("axes.accesslog", "delete_selected"): ADMIN,
}


def allowed(role: str | None, least: str) -> bool:
    return LADDER.index(role) >= LADDER.index(least)


def account(role: str | None, *, superuser: bool = False) -> User:
    name = "superuser" if superuser else (role or "norole").lower()
    user = User.objects.create_user(name, password="unused-password-0123", is_staff=True)
    user.is_superuser = superuser
    user.save()
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def model_label(model_admin: admin.ModelAdmin) -> str:
    return model_admin.model._meta.label_lower


def registered_actions() -> dict[tuple[str, str], object]:
    """Every action of every admin model, as a superuser is offered it."""
    request = RequestFactory().get("/admin/")
    request.user = User(is_superuser=True, is_staff=True, is_active=True)
    found = {}
    for model_admin in admin.site._registry.values():
        for name, (function, _, _) in model_admin.get_actions(request).items():
            found[(model_label(model_admin), name)] = function
    return found


def test_every_dashboard_page_is_in_the_matrix_and_declares_its_permission() -> None:
    patterns = [entry for entry in dashboard_urls.urlpatterns if isinstance(entry, URLPattern)]
    assert {pattern.name for pattern in patterns} == set(PAGES)
    for pattern in patterns:
        declared = getattr(pattern.callback, "required_permission", None)
        assert declared == PAGES[pattern.name][1], pattern.name


def test_every_admin_model_and_action_is_in_the_matrix_and_declares_a_permission() -> None:
    assert {model_label(model_admin) for model_admin in admin.site._registry.values()} == set(
        ADMIN_MODELS
    )
    actions = registered_actions()
    assert set(actions) == set(ADMIN_ACTIONS)
    for key, function in actions.items():
        assert getattr(function, "allowed_permissions", None), f"{key} declares no permission"


def test_the_roles_build_on_each_other() -> None:
    for lower, higher in pairwise(LADDER[1:]):
        assert ROLES[lower] < ROLES[higher], (lower, higher)
    for name, permissions in ROLES.items():
        group = Group.objects.get(name=name)
        stored = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()}
        assert stored == permissions


@pytest.mark.parametrize("role", LADDER, ids=lambda role: role or "no role")
def test_dashboard_pages_and_downloads(role: str | None) -> None:
    ingest_sample()
    boss = signed_in(account(None, superuser=True))
    client = signed_in(account(role))
    for name, (path, _, least) in PAGES.items():
        response = client.get(path)
        if allowed(role, least):
            assert response.status_code == 200, (name, role)
        else:
            assert response.status_code == 403, (name, role)
            assert "No access to this page" in response.content.decode()
            assert "cool.person@example.com" not in response.content.decode()
        table = next(iter(boss.get(path).context["page"].datasets))
        download = client.get(path, {"download": table})
        if allowed(role, least) and allowed(role, CSV_ROLE):
            assert download.status_code == 200, (name, role)
            assert download["Content-Type"].startswith("text/csv")
        else:
            assert download.status_code == 403, (name, role)
            assert not download["Content-Type"].startswith("text/csv")


@pytest.mark.parametrize("role", LADDER, ids=lambda role: role or "no role")
def test_admin_lists_and_actions(role: str | None) -> None:
    user = account(role)
    client = signed_in(user)
    request = RequestFactory().get("/admin/")
    request.user = user
    for model_admin in admin.site._registry.values():
        label = model_label(model_admin)
        opts = model_admin.model._meta
        listing = client.get(f"/admin/{opts.app_label}/{opts.model_name}/")
        expected = 200 if allowed(role, ADMIN_MODELS[label]) else 403
        assert listing.status_code == expected, (label, role)
        offered = {(label, name) for name in model_admin.get_actions(request)}
        for key, least in ADMIN_ACTIONS.items():
            if key[0] == label:
                assert (key in offered) == allowed(role, least), (key, role)


def test_a_superuser_sees_every_page_and_runs_every_action() -> None:
    ingest_sample()
    client = signed_in(account(None, superuser=True))
    for path, _, _ in PAGES.values():
        assert client.get(path).status_code == 200
    assert set(registered_actions()) == set(ADMIN_ACTIONS)


def test_a_view_only_role_posting_an_action_changes_nothing(make_source) -> None:
    created = make_source("Guarded")
    client = signed_in(account(OPERATOR))
    response = client.post(
        "/admin/metrics_source/source/",
        {"action": "disable", "_selected_action": [created.source.pk]},
    )
    assert response.status_code == 403
    created.source.refresh_from_db()
    assert created.source.enabled


def test_navigation_shows_only_what_the_role_may_open() -> None:
    viewer = signed_in(account(VIEWER)).get("/").content.decode()
    assert 'href="/deliveries/"' not in viewer
    analyst = signed_in(account(ANALYST)).get("/").content.decode()
    assert 'href="/deliveries/"' in analyst
