"""The embedded PostgreSQL (the ``pgserver`` wheel): listens on a unix socket only, inside its
data folder."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import time
import warnings
from contextlib import suppress
from pathlib import Path
from urllib.parse import quote

import psutil

from metrics_source.runtime.embedded.errors import EmbeddedError
from metrics_source.runtime.embedded.files import write_private
from metrics_source.runtime.embedded.processes import alive, terminate, unblocked_signals

DATABASE_NAME = "metrics_source"

_START_TIMEOUT = 120
_RESTART_TIMEOUT = 60  # crash recovery replays the WAL written since the last checkpoint
_STOP_TIMEOUT = 60


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
        if not alive(process.pid):  # killed, and nobody reaped it yet
            return None
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
            if not alive(pid) or psutil.Process(pid).name() != "postgres":
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
    # A restart listens where the children were told to connect: this socket folder and port.
    write_private(
        _address_path(pgdata), json.dumps({"socket_dir": str(info.socket_dir), "port": info.port})
    )
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
    terminate(found[0], timeout=10, first=signal.SIGINT)


# ------------------------------------------------------------------------------------------
# Watching: the wrapper checks the server about every second and starts it again when it died.
# ------------------------------------------------------------------------------------------


def _address_path(pgdata: Path) -> Path:
    return pgdata.with_name(pgdata.name + ".json")


def _address(pgdata: Path) -> tuple[str, int]:
    try:
        address = json.loads(_address_path(pgdata).read_text())
        return str(address["socket_dir"]), int(address["port"])
    except (OSError, ValueError, KeyError, TypeError):
        raise EmbeddedError(f"{_address_path(pgdata)} names no socket folder and port") from None


def _answers(socket_dir: str, port: int) -> bool:
    from psycopg import pq
    from psycopg.conninfo import make_conninfo

    # libpq's ping: no session is made; a server that refuses sessions (starting up, too many
    # clients) still answers.
    conninfo = make_conninfo(
        host=socket_dir, port=port, user="postgres", dbname="postgres", connect_timeout=2
    )
    return pq.PGconn.ping(conninfo.encode()) in (pq.Ping.OK, pq.Ping.REJECT)


def postgres_status(pgdata: Path) -> str:
    """One of "ok", "dead" (no live postmaster) or "silent" (running and ready, not answering)."""
    pgdata = pgdata.resolve()
    found = _postmaster(pgdata)
    if found is None:
        return "dead"
    if found[1] != "ready":  # starting, recovering or stopping: give it time
        return "ok"
    return "ok" if _answers(*_address(pgdata)) else "silent"


def _wait_shared_memory_released(pgdata: Path) -> None:
    """PostgreSQL refuses to start while a process of the killed postmaster (a backend that
    has not noticed yet) is still attached to its shared memory segment; wait for them."""
    try:
        shm_id = (pgdata / "postmaster.pid").read_text().splitlines()[6].split()[-1]
    except (OSError, IndexError):
        return
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            rows = Path("/proc/sysvipc/shm").read_text().splitlines()[1:]
        except OSError:
            return  # not Linux: PostgreSQL's own check and the caller's retry remain
        attached = [int(row.split()[6]) for row in rows if row.split()[1] == shm_id]
        if not attached or attached[0] == 0:
            return
        time.sleep(0.1)


def _release_socket(socket_dir: str, port: int) -> None:
    lock = Path(socket_dir) / f".s.PGSQL.{port}.lock"
    try:
        pid = int(lock.read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return
    with suppress(psutil.Error):
        if alive(pid) and psutil.Process(pid).name() == "postgres":
            raise EmbeddedError(
                f"{lock.with_suffix('')} is taken by another PostgreSQL (pid {pid})"
            )
    lock.unlink(missing_ok=True)


def postgres_restart(pgdata: Path) -> str:
    """Start the embedded PostgreSQL again on the socket folder and port its clients already
    have; returns where it listens."""
    pgdata = pgdata.resolve()
    socket_dir, port = _address(pgdata)
    hung = _postmaster(pgdata)
    if hung is not None:  # running but not answering: SIGQUIT is the immediate shutdown
        terminate(hung[0], timeout=10, first=signal.SIGQUIT)
    _wait_shared_memory_released(pgdata)
    _wait_postmaster_settled(pgdata)  # removes the pid file a killed postmaster left
    _release_socket(socket_dir, port)
    pgserver = _import_pgserver()
    try:
        pgserver.pg_ctl(
            ["-w", "-t", str(_RESTART_TIMEOUT),
             "-o", '-h ""', "-o", f'-k "{socket_dir}"', "-o", f"-p {port}",
             "-l", str(pgdata / "log"), "start"],
            pgdata=pgdata,
            user=_pg_system_user(),
            cwd=str(pgdata),
            timeout=_RESTART_TIMEOUT + 10,
            preexec_fn=unblocked_signals,
        )  # fmt: skip
    except (subprocess.SubprocessError, OSError) as error:
        raise EmbeddedError(f"PostgreSQL did not start again; see {pgdata / 'log'}") from error
    _wait_postmaster_settled(pgdata)
    if not _answers(socket_dir, port):
        raise EmbeddedError(f"PostgreSQL started again but does not answer; see {pgdata / 'log'}")
    return f"{socket_dir}/.s.PGSQL.{port}"
