#!/usr/bin/env python
"""Django's command-line utility for administrative tasks.

Where the environment names no servers (``DATABASE_URL``, ``REDIS_URL`` or
``CELERY_BROKER_URL``) or no ``SECRET_KEY``, the command runs under
``metrics_source.runtime.embedded``, as ``make run`` does: on the embedded PostgreSQL and
Redis of the data directory (those of a running ``make run``, or started for as long as the
command runs) with the secret key kept there. Production sets the variables, and the command
runs as it is. Help needs no server: it is printed at once.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

# Set by the first process for the one below it, so a wrapper that failed to provide the
# servers ends in an error instead of wrapping the command again, and again.
_WRAPPED = "METRICS_SOURCE_WRAPPED"

# Settings refuse to load without well-formed values; printing help contacts nothing.
_HELP_PLACEHOLDERS = {
    "DATABASE_URL": "postgres://help@127.0.0.1:5432/help",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "SECRET_KEY": "help-only-placeholder-key-0123456789abcdefghijklmnopqrstuvwxyz",
}


def missing_settings(env: Mapping[str, str]) -> list[str]:
    """The variables ``env`` lacks for a command that reaches the servers."""
    missing = [name for name in ("DATABASE_URL", "SECRET_KEY") if not env.get(name)]
    if not (env.get("REDIS_URL") or env.get("CELERY_BROKER_URL")):
        missing.append("REDIS_URL")
    return missing


def asks_for_help(args: Sequence[str]) -> bool:
    """``manage.py``, ``help [COMMAND]``, ``--help``, ``--version``, ``COMMAND --help``."""
    if not args or args[0] in {"help", "--help", "-h", "--version", "version"}:
        return True
    options = args[: args.index("--")] if "--" in args else args
    return "--help" in options or "-h" in options


def under_local_servers() -> None:
    """Return when the environment names the servers and a secret key; otherwise run this
    same command line under the embedded servers and exit with its code."""
    wrapped = os.environ.pop(_WRAPPED, None)
    missing = missing_settings(os.environ)
    if not missing:
        return
    if wrapped:
        sys.exit(f"error: {', '.join(missing)} still unset under metrics_source.runtime.embedded")
    from metrics_source.runtime.embedded import main as run_embedded

    os.environ[_WRAPPED] = "1"
    try:
        # orig_argv keeps the interpreter's own options (-u, -X dev, ...) for the command.
        sys.exit(run_embedded([sys.executable, *sys.orig_argv[1:]]))
    except OSError as error:  # e.g. a read-only data directory, as in the Docker image
        sys.exit(
            f"error: {', '.join(missing)} not set, and the embedded servers cannot start "
            f"({error.strerror}: {error.filename}); set them, or METRICS_SOURCE_DATA_DIR"
        )


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "metrics_source.settings")
    if asks_for_help(sys.argv[1:]):
        for name, value in _HELP_PLACEHOLDERS.items():
            if name in missing_settings(os.environ):
                os.environ[name] = value
    else:
        under_local_servers()
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
