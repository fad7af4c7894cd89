"""The data directory and what several commands sharing it keep there: the generated secret
key, the file lock that start and stop happen under, and the list of commands using it."""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from metrics_source.runtime.embedded.errors import EmbeddedError
from metrics_source.runtime.embedded.processes import alive

PROJECT_DIR = Path(__file__).resolve().parents[3]

_LOCK_TIMEOUT = 180  # another command may be starting or stopping the same servers


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


def write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


# Sharing: several commands (``make run`` and a ``manage.py shell``) may use one data dir.
# Start and stop happen under a file lock; the last command out stops the servers.


@contextmanager
def locked(directory: Path) -> Iterator[None]:
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


@contextmanager
def locked_if_free(directory: Path) -> Iterator[bool]:
    """The same lock without waiting: yields False while another process holds it."""
    with open(directory / ".lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def users_update(directory: Path, *, add: int | None = None, remove: int | None = None) -> list:
    """Add or remove a user pid; pids of commands that died without cleaning up are dropped."""
    path = directory / "users.json"
    try:
        users = [pid for pid in json.loads(path.read_text()) if isinstance(pid, int)]
    except (OSError, ValueError):
        users = []
    users = [pid for pid in users if pid != remove and alive(pid)]
    if add is not None and add not in users:
        users.append(add)
    path.write_text(json.dumps(users))
    return users
