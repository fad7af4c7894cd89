"""The README's production settings pass ``manage.py check --deploy`` without a warning, and
every page (the admin and the API docs too) carries the site's Content-Security-Policy."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.test import Client

from tests.gunicorn_support import PROJECT

# The "Production settings" block of the README's Deploy section.
PRODUCTION = {
    "SECRET_KEY": "production-like-key-" + "k3Y9x" * 12,
    "ALLOWED_HOSTS": "metrics.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://metrics.example.com",
    "BEHIND_TLS_PROXY": "1",
    "SECURE_COOKIES": "1",
    "SECURE_SSL_REDIRECT": "1",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
    "SECURE_HSTS_PRELOAD": "1",
}


def test_the_readme_lists_these_production_settings():
    readme = (PROJECT / "README.md").read_text()
    block = readme.split("Production settings", 1)[1].split("```", 2)[1]
    for name in PRODUCTION:
        assert f"{name}=" in block, name


def test_check_deploy_with_the_production_settings_prints_no_warning():
    env = {key: value for key, value in os.environ.items() if key not in ("DEBUG",)}
    env.update(PRODUCTION)
    env.setdefault("DATABASE_URL", "postgres://unused@127.0.0.1:5432/unused")
    env.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout, done.stdout


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/admin/", "/admin/metrics_source/source/", "/api/docs", "/"])
def test_pages_carry_the_content_security_policy(admin_user, path):
    client = Client()
    client.force_login(admin_user)
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    policy = response["Content-Security-Policy"]
    assert "script-src 'self';" in policy and "unsafe-eval" not in policy
    assert "frame-ancestors 'none'" in policy
    assert "<script>" not in response.content.decode()  # no inline script to allow


def test_the_sign_in_page_carries_it_too():
    assert "script-src 'self'" in Client().get("/admin/login/")["Content-Security-Policy"]
