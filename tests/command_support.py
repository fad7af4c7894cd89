"""Running management commands as a script runs them: in this process through call_command,
or as manage.py in a process of its own on the test database."""

from __future__ import annotations

import io
import os
import subprocess
import sys

from django.core.management import call_command

from tests.forwarding_support import ROOT, worker_database_url


def run(*args: str, stdin: str | None = None) -> str:
    """call_command with what it prints returned (and stdin given, when there is one)."""
    out = io.StringIO()
    given = {} if stdin is None else {"stdin": io.StringIO(stdin)}
    call_command(*args, stdout=out, **given)
    return out.getvalue()


def manage(*args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess:
    """manage.py in a process of its own, on the test database."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=os.environ | {"DATABASE_URL": worker_database_url()} | env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )
