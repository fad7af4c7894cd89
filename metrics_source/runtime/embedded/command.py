"""The wrapper's command line: start (or adopt) the servers, run the command, stop them when the
last command using the data directory ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from contextlib import suppress
from functools import partial
from pathlib import Path

from metrics_source.runtime.embedded.errors import EmbeddedError
from metrics_source.runtime.embedded.files import (
    data_dir,
    ensure_data_dir,
    locked,
    secret_key,
    users_update,
)
from metrics_source.runtime.embedded.postgres import postgres_start, postgres_stop
from metrics_source.runtime.embedded.redis import redis_start, redis_stop
from metrics_source.runtime.embedded.watch import ServerWatch, postgres_watched, redis_watched

# The first lines of the package's docstring, shown for -h.
USAGE = (
    "Run a command with PostgreSQL and Redis at hand:\n"
    "``python -m metrics_source.runtime.embedded -- CMD``."
)

_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_SI_KERNEL = 0x80  # si_code of a signal the kernel sends, e.g. for Ctrl-C at a terminal


def run_command(
    argv: Sequence[str], env: dict[str, str], *, tick: Callable[[], None] | None = None
) -> int:
    """Run ``argv`` in the foreground and return its exit code (128 + N if killed by signal N).
    While it runs, ``tick`` is called about every second (the servers' watch).

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
        if tick is not None:
            tick()


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
        print(USAGE, file=sys.stderr)
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
        with locked(directory):
            # Registered before starting, so a crash halfway is cleaned up by the next run.
            users_update(directory, add=os.getpid())
            registered = True
            if embed_postgres:
                env["DATABASE_URL"] = postgres_start(directory / "postgres")
            if embed_redis:
                env["REDIS_URL"] = redis_start(directory / "redis")
        names = " and ".join(
            name for name, on in (("PostgreSQL", embed_postgres), ("Redis", embed_redis)) if on
        )
        print(f"embedded {names}, data in {directory}", file=sys.stderr, flush=True)
        # The servers this command started or adopted are started again if they die.
        watched = [postgres_watched(directory / "postgres")] if embed_postgres else []
        watched += [redis_watched(directory / "redis")] if embed_redis else []
        return run_command(args, env, tick=ServerWatch(directory, watched).check)
    except EmbeddedError as error:
        print(f"embedded: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 128 + signal.SIGINT
    finally:
        if registered:
            # A second Ctrl-C must not interrupt a clean stop.
            signal.pthread_sigmask(signal.SIG_BLOCK, _FORWARDED)
            with locked(directory):
                if not users_update(directory, remove=os.getpid()):
                    try:
                        _stop_servers(directory)
                    except EmbeddedError as error:
                        print(f"embedded: {error}", file=sys.stderr)
