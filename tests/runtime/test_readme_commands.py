"""Every command README.md shows, run as a newcomer types it after the first `make run`.

The commands are read from the README when the tests run: each command of a ``sh`` block
(and each line of an unlabelled block that starts as a command does), and each inline code
span that starts with a command (``make``, ``python``, ``.venv/bin/...``, ``curl``,
``docker``, ...). ``COMMANDS`` says how each is checked; a command added to the README
without an entry there fails ``test_every_readme_command_is_classified`` until it gets one.

They run in the project folder as a fresh clone has it after `make run`, minus the data: none
of the README's configuration variables set, no virtualenv on ``PATH`` (``make test`` puts
one there and sets the servers' URLs; a newcomer's shell has neither), and a new data
directory in which embedded servers are running, as `make run`'s would be.

- ``run``: the command as written (placeholders filled in, a large count made small), which
  must exit 0 without a traceback and leave the running servers running;
- ``help``: the command with ``--help`` (it would run for minutes);
- ``make``: ``make -n`` of it (the target exists; paths it names exist); the targets
  themselves run in CI (`.ci/run`) and by hand;
- ``compose``: a health check compose.yaml runs in its containers (tests/runtime/test_compose.py
  runs them without Docker);
- ``docker``: ``docker compose exec SERVICE CMD``: SERVICE is in compose.yaml and CMD, the
  image's copy of this project, runs here with ``--help`` (no Docker here);
- ``elsewhere``: covered by the named test file;
- ``http``: the curl example, sent to a live gunicorn, must get the answer the README shows;
- ``password``: the forgotten-password recipe, which must set the password it is given;
- ``name``: a word that is no command there (``celery``, a queue name).

One module on purpose (over 400 lines): ``COMMANDS`` must see every README command in one table, or
a command could go unclassified.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest
import requests
import yaml

from metrics_source.runtime import embedded

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
VENV_BIN = ROOT / ".venv" / "bin"
ADMIN_PASSWORD = "readme-Admin-pw-4821"
NEW_PASSWORD = "readme-New-pw-9034"

# First words that make a line or an inline code span a command.
COMMAND_WORDS = {
    "make", "python", "python3", "curl", "docker", "zcat", "gzip", "export", "pip", "sh",
    "bash", "git", "celery", "gunicorn", "pg_isready", "redis-cli",
}  # fmt: skip
_ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=\S*$")


@dataclass(frozen=True)
class Check:
    kind: str  # run, help, make, compose, elsewhere, http
    # Each variant is run once: README text -> what replaces it (every key must occur).
    variants: tuple[dict[str, str], ...] = ({},)
    append: str = ""
    stdin: str | None = None
    covered_by: str = ""
    reason: str = ""


def run(*variants: dict[str, str], append: str = "", stdin: str | None = None) -> Check:
    return Check("run", variants or ({},), append=append, stdin=stdin)


def help_(*variants: dict[str, str]) -> Check:
    return Check("help", variants or ({},), append=" --help")


MAKE = Check("make")
COMPOSE = Check("compose")


def elsewhere(covered_by: str, reason: str) -> Check:
    return Check("elsewhere", covered_by=covered_by, reason=reason)


DESTINATION = {"DESTINATION": "readme-destination"}
LOOPBACK = {".venv/bin/python": "FORWARDING_ALLOW_PRIVATE_NETWORKS=1 .venv/bin/python"}
SMALL_BENCH = " --events 300 --track-events 30"

COMMANDS: dict[str, Check] = {
    # Two commands
    "make run": MAKE,
    "make test": MAKE,
    "make run DEMO_EVENTS=200000": MAKE,
    "DATABASE_URL=postgres://postgres@127.0.0.1:5432/metrics_source "
    "REDIS_URL=redis://127.0.0.1:6379/0 make test": MAKE,
    'make test PYTEST_ARGS="tests/ingest/test_api_tracking.py -x"': MAKE,
    "make lint": MAKE,
    "make typecheck": MAKE,
    "make bench": MAKE,
    "make bench-table-copy": MAKE,
    "make bench-forward": MAKE,
    "make bench-dashboard": MAKE,
    "make bench-slow-clients": MAKE,
    "make lock": MAKE,
    "make install": MAKE,
    # Configuration
    "celery": Check("name", reason="the default of CELERY_QUEUE, a queue name"),
    "scripts/ensure-chromium": elsewhere(
        "tests/runtime/test_browser_harness.py",
        "`make test` runs it (make -n test shows it); installing a browser is no harmless run",
    ),
    ".venv/bin/python manage.py changepassword admin": Check("password"),
    # Sending events
    "curl -u \"$WRITE_KEY:\" -H 'Content-Type: application/json' "
    "http://127.0.0.1:8000/v1/batch -d '{ ...": Check("http"),
    # Bulk import
    ".venv/bin/python manage.py import_events events.ndjson.gz --source my-source": run(
        {"events.ndjson.gz": "{events_file}"}
    ),
    "zcat export.ndjson.gz | .venv/bin/python manage.py import_events -": run(
        {"export.ndjson.gz": "{events_file}"}
    ),
    # Forwarding
    ".venv/bin/python manage.py forward_status [--json]": run(
        {" [--json]": ""}, {"[--json]": "--json"}
    ),
    # Sources and destinations, scripted. The example URLs are no loopback receiver, and this
    # machine resolves no public name: the test points them at loopback, allowed for it.
    # The set-up made a "Workspace A" for the rotation; this one is another.
    '.venv/bin/python manage.py source_create "Workspace A" --slug workspace-a': run(
        {"Workspace A": "Workspace B", "workspace-a": "workspace-b"}
    ),
    ".venv/bin/python manage.py source_list": run(),
    ".venv/bin/python manage.py source_rotate_key workspace-a --json": run(),
    ".venv/bin/python manage.py source_end_grace workspace-a": run(),
    ".venv/bin/python manage.py destination_create crm --kind webhook "
    "--url https://crm.example/hooks/metrics --channel email --channel push "
    "--batch-size 100": run(LOOPBACK | {"crm ": "readme-crm ", "crm.example": "127.0.0.1:9"}),
    "SEGMENT_WRITE_KEY=... .venv/bin/python manage.py destination_create cdp --kind segment "
    "--url https://cdp.customer.io --secret-env SEGMENT_WRITE_KEY": run(
        LOOPBACK
        | {
            "=...": "=readme-segment-key",
            "cdp ": "readme-cdp ",
            "cdp.customer.io": "127.0.0.1:9",
        }
    ),
    ".venv/bin/python manage.py destination_list": run(),
    ".venv/bin/python manage.py forward_replay DESTINATION --dead": run(DESTINATION),
    ".venv/bin/python manage.py forward_replay DESTINATION --since 2025-01-01T00:00:00Z "
    "--until 2025-01-02T00:00:00Z": run(DESTINATION),
    ".venv/bin/python manage.py forward_replay DESTINATION --all": run(DESTINATION),
    ".venv/bin/python manage.py forward_replay DESTINATION --message-id ID "
    "[--message-id ID ...]": run(
        {**DESTINATION, "ID [--message-id ID ...]": "readme-1 --message-id readme-2"}
    ),
    ".venv/bin/python manage.py secrets_reencrypt": run(),
    ".venv/bin/python -c 'from cryptography.fernet import Fernet; "
    "print(Fernet.generate_key().decode())'": run(),
    # Dashboard
    ".venv/bin/python manage.py demo_data": help_(),
    ".venv/bin/python manage.py demo_data --events 200000 [--days 90] [--seed N]": run(
        {"200000 [--days 90] [--seed N]": "300"},
        {"200000": "300", "[--days 90]": "--days 90", "[--seed N]": "--seed 5"},
    ),
    # Deploy
    "python manage.py check --deploy": elsewhere(
        "tests/runtime/test_deploy_settings.py",
        "it runs with the README's production settings there (here they are unset)",
    ),
    "pg_isready": COMPOSE,
    "redis-cli ping": COMPOSE,
    "celery inspect ping": COMPOSE,
    "python -m metrics_source.runtime.beat <schedule file>": COMPOSE,
    "export SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_urlsafe(50))')": run(
        append=' && [ "${#SECRET_KEY}" -ge 32 ]'
    ),
    "docker compose up -d --build": elsewhere(
        "tests/runtime/test_compose.py", "no Docker here; compose.yaml is read and run there"
    ),
    "docker compose exec web python manage.py createsuperuser": Check("docker"),
    "docker compose exec web python manage.py secrets_reencrypt": Check("docker"),
    ".venv/bin/python manage.py summaries_rebuild": run(),
    # Performance
    ".venv/bin/python bench/ingest.py": run(append=SMALL_BENCH),
    ".venv/bin/python bench/ingest.py --no-rollup": help_(),
}


# ------------------------------------------------------------------------------------------
# Reading the README
# ------------------------------------------------------------------------------------------


@dataclass
class ReadmeCommand:
    key: str  # one line, as COMMANDS names it
    text: str  # as written, to run
    where: str  # "block" or "inline"
    block: list[str] = field(default_factory=list)  # the lines of the block after it


def _first_word(text: str) -> str:
    words = text.split()
    while words and _ASSIGNMENT.match(words[0]):
        words = words[1:]
    return words[0] if words else ""


def _is_command(text: str) -> bool:
    word = _first_word(text)
    if word.startswith("scripts/"):
        return (ROOT / word).is_file()
    return word in COMMAND_WORDS or word.startswith(".venv/bin/")


def _complete(text: str) -> bool:
    if text.rstrip().endswith("\\"):
        return False
    try:
        shlex.split(text)
    except ValueError:  # a quote still open: the command goes on
        return False
    return True


def _strip_comment(line: str) -> str:
    stripped = re.sub(r"\s+#\s.*$", "", line)
    return stripped if _complete(stripped) or not _complete(line) else line


def _key(lines: list[str]) -> str:
    joined = []
    for line in lines:
        joined.append(line.rstrip().removesuffix("\\").strip())
        if not _complete(" ".join(joined)) and not line.rstrip().endswith("\\"):
            return " ".join(joined) + " ..."  # a quoted argument over several lines
    return " ".join(" ".join(joined).split())


def readme_commands(text: str) -> list[ReadmeCommand]:
    found: list[ReadmeCommand] = []
    prose: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        fence = re.match(r"^(\s*)```(\w*)\s*$", lines[i])
        if not fence:
            prose.append(lines[i])
            i += 1
            continue
        indent, language = len(fence.group(1)), fence.group(2)
        body = []
        i += 1
        while not lines[i].strip().startswith("```"):
            body.append(lines[i][indent:])
            i += 1
        i += 1
        prose.append("")
        if language not in {"", "sh", "bash", "shell", "console"}:
            continue
        pending: list[str] = []
        for line in body:
            if not pending and (not line.strip() or line.lstrip().startswith("#")):
                continue
            if not pending and language == "" and not _is_command(line):
                continue
            pending.append(_strip_comment(line))
            if _complete("\n".join(pending)):
                found.append(ReadmeCommand(_key(pending), "\n".join(pending), "block"))
                pending = []
        assert not pending, f"README block ends inside a command: {pending}"
        if found and language:
            found[-1].block = lines[i:]  # what follows (the curl example's answer)
    for span in re.findall(r"`([^`]+)`", "\n".join(prose)):
        span = " ".join(span.split())
        if _is_command(span):
            found.append(ReadmeCommand(span, span, "inline"))
    unique: dict[str, ReadmeCommand] = {}
    for command in found:
        unique.setdefault(command.key, command)
    return list(unique.values())


READ = readme_commands(README.read_text())


def commands_of(*kinds: str) -> list[ReadmeCommand]:
    return [c for c in READ if c.key in COMMANDS and COMMANDS[c.key].kind in kinds]


def test_every_readme_command_is_classified():
    keys = {command.key for command in READ}
    unclassified = sorted(keys - COMMANDS.keys())
    assert not unclassified, (
        "README commands with no entry in COMMANDS (say how each is checked): "
        + "; ".join(unclassified)
    )
    stale = sorted(COMMANDS.keys() - keys)
    assert not stale, "COMMANDS names commands the README no longer shows: " + "; ".join(stale)


def test_the_reader_finds_block_inline_and_multiline_commands():
    sample = (
        "Run `make x` or `.venv/bin/python manage.py\nhelp`, not `DEBUG`.\n"
        "```sh\nmake run   # go\nA=1 \\\nB=2 make test\ncurl -d '{\n  \"a\": 1\n}'\n```\n"
        "```\ntree/   not a command\npython manage.py y\n```\n"
        "```python\nimport os\n```\n"
    )
    keys = [c.key for c in readme_commands(sample)]
    assert keys == [
        "make run",
        "A=1 B=2 make test",
        "curl -d '{ ...",
        "python manage.py y",
        "make x",
        ".venv/bin/python manage.py help",
    ]


# ------------------------------------------------------------------------------------------
# A fresh clone after `make run`
# ------------------------------------------------------------------------------------------


def configuration_variables() -> set[str]:
    """The variables of the README's Configuration table, and the ones make test sets."""
    section = README.read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    names = set(re.findall(r"^\| `([A-Z_][A-Z0-9_]*)` \|", section, flags=re.MULTILINE))
    assert {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "METRICS_SOURCE_DATA_DIR"} <= names
    return names | {"DJANGO_SETTINGS_MODULE", "VIRTUAL_ENV", "PYTHONPATH"}


def newcomer_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in configuration_variables()}
    # Not the virtualenv's python (the embedded wrapper puts it first on PATH for the suite).
    env["PATH"] = os.pathsep.join(
        part
        for part in env.get("PATH", "").split(os.pathsep)
        if Path(part).resolve() not in {VENV_BIN.resolve(), Path(sys.executable).parent.resolve()}
    )
    env["METRICS_SOURCE_DATA_DIR"] = str(data_dir)
    return env


@dataclass
class Clone:
    env: dict[str, str]
    data_dir: Path
    events_file: Path
    server_pids: tuple[int, int]

    def sh(self, command: str, *, stdin: str | None = None, timeout: float = 180, **env: str):
        return subprocess.run(
            ["sh", "-c", command],
            cwd=ROOT,
            env={**self.env, **env},
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            start_new_session=True,  # no terminal: getpass reads the password from stdin
            check=False,
        )

    def manage(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        result = self.sh(shlex.join([".venv/bin/python", "manage.py", *args]), **env)
        assert result.returncode == 0, result.stderr
        return result


def assert_ran(result: subprocess.CompletedProcess, command: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{command!r} exited {result.returncode}:\n{output[-3000:]}"
    assert "Traceback" not in output, f"{command!r} printed a traceback:\n{output[-3000:]}"


@pytest.fixture(scope="module")
def clone():
    """A data directory as the first `make run` leaves it (migrated, an admin, a source, a
    destination), its servers kept running by a holder as `make run` keeps them."""
    # Outside pytest's tmp root, which pytest makes 0700 (PostgreSQL runs as another user
    # under root); and short, for PostgreSQL's socket path.
    data_dir = Path(tempfile.mkdtemp(prefix="ms-readme-")) / "data"
    env = newcomer_env(data_dir)
    holder = None
    try:
        clone = Clone(env, data_dir, data_dir.parent / "events.ndjson.gz", (0, 0))
        # The first command starts the servers and stops them when it ends...
        clone.manage("migrate", "--noinput", "-v0")
        assert not (data_dir / "redis" / "redis.pid").exists() or not _running(
            int((data_dir / "redis" / "redis.pid").read_text())
        ), "a command alone left the servers running"
        # ...later ones find them running, as beside `make run`.
        holder = subprocess.Popen(
            [str(VENV_BIN / "python"), "-m", "metrics_source.runtime.embedded", "--",
             str(VENV_BIN / "python"), "-c", "import sys; print(flush=True); sys.stdin.read()"],
            cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        assert holder.stdout is not None and holder.stdout.readline() == b"\n"
        clone.server_pids = (
            int((data_dir / "postgres" / "postmaster.pid").read_text().split()[0]),
            int((data_dir / "redis" / "redis.pid").read_text()),
        )
        clone.manage("ensure_admin", ADMIN_PASSWORD=ADMIN_PASSWORD)
        setup = (
            "from metrics_source.forwarding.models import Destination;"
            "from metrics_source.ingest.sources import source_create;"
            "source_create(name='my-source');"
            "source_create(name='Workspace A', slug='workspace-a');"
            "Destination.objects.create(name='readme-destination', kind='webhook',"
            " url='https://receiver.example/hook')"
        )
        clone.manage("shell", "-c", setup)
        event = {"type": "track", "event": "Email Delivered", "userId": "42",
                 "messageId": "readme-1", "timestamp": "2026-11-20T10:00:00Z",
                 "properties": {"delivery_id": "RPILAgUB", "campaign_id": 7}}  # fmt: skip
        clone.events_file.write_bytes(gzip.compress(json.dumps(event).encode() + b"\n"))
        yield clone
    finally:
        if holder is not None:
            holder.communicate(timeout=120)  # stdin closed: the last user stops the servers
        embedded.postgres_stop(data_dir / "postgres")
        embedded.redis_stop(data_dir / "redis")
        shutil.rmtree(data_dir.parent, ignore_errors=True)


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def concrete(command: ReadmeCommand, check: Check, variant: dict[str, str], clone: Clone) -> str:
    text = command.text
    for written, meant in variant.items():
        assert written in text, f"{written!r} is no longer in {command.key!r}"
        text = text.replace(written, meant.format(events_file=clone.events_file))
    return text + check.append


@pytest.mark.parametrize("command", commands_of("run", "help"), ids=lambda c: c.key)
def test_readme_command_runs_as_written(clone, command):
    check = COMMANDS[command.key]
    for variant in check.variants:
        text = concrete(command, check, variant, clone)
        result = clone.sh(text, stdin=check.stdin)
        assert_ran(result, text)
        assert all(_running(pid) for pid in clone.server_pids), (
            f"{text!r} stopped the servers a running `make run` uses"
        )


def test_the_forgotten_password_recipe_sets_the_password(clone):
    probe = (
        "from django.contrib.auth.models import User;"
        f"print(User.objects.get(username='admin').check_password('{NEW_PASSWORD}'))"
    )
    (recipe,) = commands_of("password")
    assert_ran(clone.sh(recipe.text, stdin=f"{NEW_PASSWORD}\n" * 2), recipe.text)
    assert clone.manage("shell", "-c", probe).stdout.splitlines()[-1] == "True"


@pytest.mark.parametrize("command", commands_of("make"), ids=lambda c: c.key)
def test_readme_make_command_names_a_target(tmp_path, command):
    dry_run = re.sub(r"\bmake\b", "make -n", command.text, count=1)
    result = subprocess.run(
        ["sh", "-c", dry_run], cwd=ROOT, env=newcomer_env(tmp_path / "data"),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert_ran(result, dry_run)
    for word in shlex.split(command.text.replace("\\\n", " ")):
        for part in word.split("=", 1)[-1].split():
            if part.startswith("tests/"):
                assert (ROOT / part).exists(), f"{command.key!r} names {part}, which is gone"


def _compose_health_checks() -> list[list[str]]:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    checks = []
    for service in compose["services"].values():
        test = service.get("healthcheck", {}).get("test")
        if test:
            words = test[1:] if test[0] in {"CMD", "CMD-SHELL"} else test
            checks.append(shlex.split(" ".join(words)))
    return checks


@pytest.mark.parametrize("command", commands_of("compose"), ids=lambda c: c.key)
def test_readme_health_check_is_compose_s(command):
    words = [w for w in command.text.split() if not w.startswith("<") and not w.endswith(">")]

    def in_order(check: list[str]) -> bool:
        remaining = iter(check)
        return all(word in remaining for word in words)

    assert any(in_order(check) for check in _compose_health_checks()), (
        f"no compose.yaml health check runs {command.key!r}"
    )


@pytest.mark.parametrize("command", commands_of("docker"), ids=lambda c: c.key)
def test_readme_docker_exec_names_a_service_and_a_command(clone, command):
    docker, compose, verb, service, *inside = shlex.split(command.text)
    assert (docker, compose, verb) == ("docker", "compose", "exec"), command.key
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    assert service in services, f"compose.yaml has no service {service!r}"
    # The image runs this project from its folder with the image's python (see the Dockerfile).
    assert inside[:2] == ["python", "manage.py"], inside
    text = shlex.join([".venv/bin/python", *inside[1:], "--help"])
    assert_ran(clone.sh(text), text)


@pytest.mark.parametrize("command", commands_of("elsewhere", "name"), ids=lambda c: c.key)
def test_readme_command_not_run_here_says_why(command):
    check = COMMANDS[command.key]
    assert check.reason, check
    assert check.kind == "name" or (ROOT / check.covered_by).is_file(), check


def test_readme_curl_example_gets_the_answer_shown(clone):
    (command,) = commands_of("http")
    answer = json.loads("\n".join(command.block).split("```json", 1)[1].split("```", 1)[0])
    key = clone.manage(
        "shell", "-c",
        "from metrics_source.ingest.sources import source_create;"
        "print(source_create(name='readme-curl')[1])",
    ).stdout.strip().splitlines()[-1]  # fmt: skip
    port = _free_port()
    gunicorn = subprocess.Popen(
        [".venv/bin/python", "-m", "metrics_source.runtime.embedded", "--",
         ".venv/bin/gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1",
         "metrics_source.wsgi:application"],
        cwd=ROOT, env=clone.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip
    try:
        _wait_ready(f"http://127.0.0.1:{port}/healthz", gunicorn)
        text = command.text.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        result = clone.sh(text, WRITE_KEY=key)
        assert_ran(result, text)
        assert json.loads(result.stdout) == answer
    finally:
        with suppress(ProcessLookupError):
            os.killpg(gunicorn.pid, signal.SIGTERM)
        gunicorn.communicate(timeout=60)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_ready(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, f"gunicorn exited with code {process.returncode}"
        with suppress(requests.ConnectionError):
            if requests.get(url, timeout=5).status_code == 200:
                return
        time.sleep(0.3)
    raise AssertionError(f"{url} did not answer 200 within 60 s")


def test_a_command_without_its_servers_never_wraps_itself_twice(tmp_path):
    """The wrapper always provides the servers; should it ever not, the command says so."""
    env = newcomer_env(tmp_path / "data") | {"METRICS_SOURCE_WRAPPED": "1"}
    result = subprocess.run(
        [str(VENV_BIN / "python"), "manage.py", "forward_status"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "still unset under metrics_source.runtime.embedded" in result.stderr
    assert not (tmp_path / "data").exists(), "nothing was started"


def test_help_needs_no_server(tmp_path):
    env = newcomer_env(tmp_path / "data")
    asked = {
        (): "forward_status",  # the list of commands, the project's included
        ("help",): "forward_status",
        ("forward_status", "--help"): "usage: manage.py forward_status",
        ("help", "import_events"): "usage: manage.py import_events",
    }
    for args, expected in asked.items():
        result = subprocess.run(
            [str(VENV_BIN / "python"), "manage.py", *args],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert expected in result.stdout + result.stderr, (args, result.stdout[-2000:])
    assert not (tmp_path / "data").exists(), "help started the embedded servers"


def test_a_data_directory_that_cannot_be_made_is_a_clear_error(tmp_path):
    (tmp_path / "a-file").write_text("")
    env = newcomer_env(tmp_path / "a-file" / "data")
    result = subprocess.run(
        [str(VENV_BIN / "python"), "manage.py", "forward_status"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "the embedded servers cannot start" in result.stderr
