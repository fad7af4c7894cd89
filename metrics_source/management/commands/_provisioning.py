"""What the source_* and destination_* commands share: reading a secret without putting it on
the command line, one JSON document or lines of text on stdout, errors on one line.

Django runs no module of commands/ whose name starts with "_" as a command."""

from __future__ import annotations

import json
import os
import sys
from argparse import ArgumentParser
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError


def add_secret_arguments(parser: ArgumentParser, name: str, what: str) -> None:
    """--NAME-stdin, --NAME-env VAR and --NAME VALUE, at most one of them. The first two keep
    the secret out of the process list and the shell history; the third is for a throwaway
    setup and says so."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        f"--{name}-stdin",
        action="store_true",
        help=f"Read {what} from the first line of standard input.",
    )
    group.add_argument(
        f"--{name}-env", metavar="VARIABLE", help=f"Read {what} from this environment variable."
    )
    group.add_argument(
        f"--{name}",
        metavar="VALUE",
        help=f"{what[0].upper()}{what[1:]} on the command line: other users of the machine can "
        f"see it in the process list, and it stays in the shell history; prefer --{name}-stdin "
        f"or --{name}-env.",
    )


def read_secret(options: dict[str, Any], name: str) -> str:
    """The secret given by one of add_secret_arguments' options ("" when none)."""
    attribute = name.replace("-", "_")
    if options.get(f"{attribute}_stdin"):
        stdin = options.get("stdin") or sys.stdin
        value = stdin.readline().strip()
        if not value:
            raise CommandError(f"--{name}-stdin: standard input has no secret on its first line")
        return value
    variable = options.get(f"{attribute}_env")
    if variable:
        value = os.environ.get(variable, "").strip()
        if not value:
            raise CommandError(f"--{name}-env: the environment variable {variable} is not set")
        return value
    return (options.get(attribute) or "").strip()


def one_line(error: ValidationError) -> str:
    """A model's validation errors on one line, field by field; never the values."""
    if hasattr(error, "error_dict"):
        return "; ".join(
            f"{field}: {' '.join(messages).rstrip('.')}"
            for field, messages in error.message_dict.items()
        )
    return " ".join(error.messages).rstrip(".")


def write_json(command: BaseCommand, document: Any) -> None:
    """One JSON document, and nothing else, on stdout."""
    command.stdout.write(json.dumps(document, indent=2, ensure_ascii=False, default=str))
