"""Run the whole system: migrate, make sure an admin login exists, then run the web front,
gunicorn, a Celery worker and Celery beat together until Ctrl-C (SIGINT) or SIGTERM stops them
all. A child that dies is restarted after a backoff, the others untouched
(metrics_source.runtime.supervisor). ``--web-only`` runs the front and gunicorn alone (the
container's web service: compose runs migrations, the worker and beat as services of their
own).

The front (metrics_source.runtime.front) listens on BIND and buffers each request whole
before gunicorn, which listens on a Unix socket in a directory only this user can enter.

Environment: BIND (default 127.0.0.1:8000), WEB_CONCURRENCY (gunicorn workers),
CELERY_WORKER_CONCURRENCY (default 2), WEB_FRONT_CONNECTIONS (default 1000: clients the front
holds at once); GUNICORN_CMD_ARGS passes further options to gunicorn.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles.finders import get_finders
from django.contrib.staticfiles.storage import ManifestFilesMixin, staticfiles_storage
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import OperationalError, connections

from metrics_source.models import Event
from metrics_source.runtime.embedded import data_dir, ensure_data_dir
from metrics_source.runtime.env import env_int, env_str
from metrics_source.runtime.front import TOKEN_VARIABLE
from metrics_source.runtime.supervisor import Child, Supervisor, child_setup

STOP_TIMEOUT = 30  # seconds each child gets to finish after SIGTERM before SIGKILL
GRACEFUL_TIMEOUT = 25  # gunicorn's own limit for requests in flight; below STOP_TIMEOUT


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))  # honours CPU limits of containers
    except AttributeError:
        return os.cpu_count() or 1


def default_web_workers() -> int:
    # Sync workers on a CPU-bound API (JSON parsing and validation per event) with short
    # commit waits: one per core keeps every core busy, one more covers a worker waiting on
    # PostgreSQL. The usual 2*cores+1 suits I/O-bound apps and here would only add memory
    # and context switches, while PostgreSQL and Celery share the same cores.
    return _cpu_count() + 1


def base_url(bind: str) -> str:
    """The address to show a person for a gunicorn bind string."""
    if bind.startswith(("unix:", "fd://")):
        return bind
    host, _, port = bind.rpartition(":")
    if not host:
        host, port = bind, "8000"
    if host in {"0.0.0.0", "[::]", "::", ""}:  # noqa: S104 (reading the bind, not binding)
        host = "localhost"
    return f"http://{host}:{port}"


def static_files_stale() -> bool:
    """True when pages would fail to link static files: the hashed-name storage (DEBUG off)
    has no usable manifest, or one that misses a file or predates a change."""
    if not isinstance(staticfiles_storage, ManifestFilesMixin):
        return False
    manifest = Path(settings.STATIC_ROOT) / staticfiles_storage.manifest_name
    if not manifest.exists():
        try:  # a storage that falls back to plain names needs no collect step
            staticfiles_storage.url("admin/css/base.css")
            return False
        except ValueError:
            return True
    try:
        collected = json.loads(manifest.read_text())["paths"]
        built = manifest.stat().st_mtime
    except (OSError, ValueError, KeyError, TypeError):
        return True
    for finder in get_finders():
        for path, storage in finder.list(["CVS", ".*", "*~"]):
            if path not in collected or os.path.getmtime(storage.path(path)) > built:
                return True
    return False


class Command(BaseCommand):
    help = (
        "Migrate, ensure an admin login, run the web front + gunicorn + Celery worker + "
        "Celery beat."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--skip-migrate", action="store_true", help="Do not run migrations first."
        )
        parser.add_argument(
            "--bind", help="HOST:PORT to serve on (default: BIND, else 127.0.0.1:8000)."
        )
        parser.add_argument(
            "--web-only",
            action="store_true",
            help="Run only the web front and gunicorn: no migrations, admin, worker or beat.",
        )

    def handle(
        self,
        *args,
        skip_migrate: bool = False,
        web_only: bool = False,
        bind: str | None = None,
        **options,
    ):
        bind = bind or env_str("BIND", "127.0.0.1:8000") or "127.0.0.1:8000"
        if bind.startswith("fd://"):
            raise CommandError("BIND must be HOST:PORT or unix:PATH (the web front listens there)")
        url = base_url(bind)
        if not web_only:
            self._prepare(url, skip_migrate=skip_migrate)
        # gunicorn's socket, in a directory of this run that only this user can enter: what
        # arrives on it came through the front (see metrics_source.access.addresses).
        private = Path(tempfile.mkdtemp(prefix="metrics-source-web-"))
        # Proves to gunicorn that a request came through this run's front (both children
        # inherit it; it is in no command line): metrics_source.runtime.front.
        os.environ[TOKEN_VARIABLE] = secrets.token_urlsafe(32)
        try:
            self._run(bind, url, private / "gunicorn.sock", web_only=web_only)
        finally:
            shutil.rmtree(private, ignore_errors=True)

    def _prepare(self, url: str, *, skip_migrate: bool) -> None:
        try:
            if not skip_migrate:
                call_command("migrate", interactive=False, verbosity=0)
            if static_files_stale():
                self.stdout.write("Collecting static files...")
                call_command("collectstatic", interactive=False, verbosity=0)
            call_command("ensure_admin", login_url=f"{url}/admin/")
            self._offer_demo_data()
        except OperationalError as error:
            raise CommandError(f"cannot use the database: {error}") from None
        finally:
            connections.close_all()  # the children open their own

    def _run(self, bind: str, url: str, socket_path: Path, *, web_only: bool) -> None:
        self._stop_signal: int | None = None
        self._stop_requested_at = 0.0
        self._kill_now = False
        for signo in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signo, self._on_signal)

        commands = self._web_commands(bind, socket_path)
        if not web_only:
            commands += self._celery_commands()
        supervisor = Supervisor([Child(name, argv) for name, argv in commands], spawn=self._spawn)
        try:
            supervisor.start_all()
            self.stdout.write(
                f"metrics-source is starting:\n"
                f"  dashboard  {url}/\n"
                f"  admin      {url}/admin/\n"
                f"  API docs   {url}/api/docs\n"
                "Press Ctrl-C to stop."
            )
            self.stdout.flush()
            supervisor.watch(stopping=lambda: self._stop_signal is not None)
        finally:
            supervisor.stop(
                timeout=STOP_TIMEOUT, give_up=lambda: self._kill_now, report=self.stderr.write
            )
        self.stdout.write("metrics-source stopped.")

    def _offer_demo_data(self) -> None:
        """A first run shows a living dashboard: with DEMO_EVENTS set and nothing stored yet,
        generate that many demo events; with nothing stored and no DEMO_EVENTS, say how."""
        if Event.objects.exists():
            return
        events = env_int("DEMO_EVENTS", 0)
        if events > 0:
            self.stdout.write(f"No events stored yet: generating {events:,} demo events...")
            call_command("demo_data", events=events, if_empty=True)
        else:
            self.stdout.write(
                "No events stored yet. For a dashboard full of realistic demo activity, run\n"
                "  make run DEMO_EVENTS=200000\n"
                "(or `python manage.py demo_data`), or send real events (README: Sending events)."
            )

    def _web_commands(self, bind: str, socket_path: Path) -> list[tuple[str, list[str]]]:
        python = sys.executable
        workers = env_int("WEB_CONCURRENCY", default_web_workers())
        return [
            # Signalled first on a stop: it takes no new request while gunicorn finishes.
            (
                "web front",
                [python, "-m", "metrics_source.runtime.front",
                 "--listen", bind,
                 "--backend", str(socket_path),
                 # Threads only wait on gunicorn: two per worker keep each one fed.
                 "--threads", str(max(4, 2 * workers)),
                 "--connection-limit", str(env_int("WEB_FRONT_CONNECTIONS", 1000)),
                 *(["--trust-forwarded-proto"] if settings.BEHIND_TLS_PROXY else [])],
            ),
            (
                "gunicorn",
                [python, "-m", "gunicorn", "metrics_source.wsgi:application",
                 "--bind", f"unix:{socket_path}",
                 "--workers", str(workers),
                 "--worker-class", "sync",
                 "--graceful-timeout", str(GRACEFUL_TIMEOUT),
                 # Its control socket sits at one path per user: two servers would share it.
                 "--no-control-socket"],
            ),
        ]  # fmt: skip

    def _celery_commands(self) -> list[tuple[str, list[str]]]:
        python = sys.executable
        return [
            (
                "celery worker",
                [python, "-m", "celery", "-A", "metrics_source", "worker",
                 "--loglevel", settings.LOG_LEVEL,
                 "--concurrency", str(env_int("CELERY_WORKER_CONCURRENCY", 2))],
            ),
            (
                "celery beat",
                [python, "-m", "celery", "-A", "metrics_source", "beat",
                 "--loglevel", settings.LOG_LEVEL,
                 "--schedule", str(ensure_data_dir(data_dir()) / "celerybeat-schedule"),
                 "--scheduler", "metrics_source.runtime.beat:HeartbeatScheduler"],
            ),
        ]  # fmt: skip

    def _spawn(self, argv: list[str]) -> subprocess.Popen:
        return subprocess.Popen(
            argv,
            cwd=Path(settings.BASE_DIR),
            stdin=subprocess.DEVNULL,  # no terminal in their own sessions
            preexec_fn=partial(child_setup, os.getpid()),
        )

    def _on_signal(self, signo: int, frame) -> None:
        now = time.monotonic()
        if self._stop_signal is None:
            self._stop_signal, self._stop_requested_at = signo, now
        elif signo == signal.SIGINT and now - self._stop_requested_at > 1:
            # A person pressing Ctrl-C again: stop waiting. Repeated SIGTERMs, or copies of
            # one signal sent to a whole process group, arrive together and change nothing.
            self._kill_now = True
