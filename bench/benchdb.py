"""A throwaway database for one benchmark run, on the server DATABASE_URL names."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parent.parent


def under_local_servers() -> None:
    """Return when DATABASE_URL, REDIS_URL and SECRET_KEY are set; otherwise run this bench's
    command line again on the data directory's embedded servers, as manage.py does (so
    ``.venv/bin/python bench/ingest.py`` works as ``make bench`` does)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import manage

    manage.under_local_servers()


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def psycopg_url(url: str) -> str:
    return url.replace("postgres://", "postgresql://", 1)


@dataclass(frozen=True)
class BenchDatabase:
    name: str
    url: str  # the bench database, in DATABASE_URL form
    admin_url: str  # the server's `postgres` database, to create and drop it

    def drop(self) -> None:
        with psycopg.connect(psycopg_url(self.admin_url), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def fresh_database(suffix: str, *, make_target: str) -> BenchDatabase:
    """Create ``<DATABASE_URL's name>_<suffix>`` anew (dropping an old one)."""
    base_url = os.environ.get("DATABASE_URL")
    if not base_url or not os.environ.get("REDIS_URL"):
        raise SystemExit(f"set DATABASE_URL and REDIS_URL (or run `make {make_target}`)")
    name = f"{urlsplit(base_url).path.lstrip('/') or 'metrics_source'}_{suffix}"
    database = BenchDatabase(
        name, with_database(base_url, name), with_database(base_url, "postgres")
    )
    database.drop()
    with psycopg.connect(psycopg_url(database.admin_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return database


def migrated_env(database: BenchDatabase) -> dict[str, str]:
    """The environment of the project's processes on the bench database, migrated."""
    root = Path(__file__).resolve().parent.parent
    env = dict(
        os.environ, DATABASE_URL=database.url, DJANGO_SETTINGS_MODULE="metrics_source.settings"
    )
    env.setdefault("SECRET_KEY", "bench-" + uuid.uuid4().hex + uuid.uuid4().hex)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=root, env=env, check=True)
    return env


def source_auth(env: dict[str, str]) -> str:
    """A new source's write key as the ``Authorization`` header an SDK sends."""
    make_key = (
        "from metrics_source.ingest.sources import source_create;"
        "print(source_create(name='bench')[1])"
    )
    write_key = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", make_key],
        cwd=Path(__file__).resolve().parent.parent, env=env, check=True, capture_output=True,
        text=True,
    ).stdout.strip().splitlines()[-1]  # fmt: skip
    return "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()
