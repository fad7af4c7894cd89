"""Bulk import: NDJSON of track calls and reporting-webhook payloads, through the same services
as the API, in chunks, safe to run twice. In-process through call_command, and as a real
process reading stdin.

One module on purpose (over 400 lines): every input format and failure of the command shares the
helpers here.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from metrics_source.models import Event, Origin

PROJECT_ROOT = Path(__file__).resolve().parents[2]

WEBHOOK_EMAIL_SENT = {
    "metric": "sent",
    "event_id": "01HIMPORTWEBHOOK00000000001",
    "object_type": "email",
    "timestamp": 1613063089,
    "data": {
        "action_id": 42,
        "broadcast_id": 9,
        "customer_id": "0200000001",
        "delivery_id": "RPILAgUBcRhIBqSfeiIwdIYJKxTY",
        "identifiers": {"id": "42", "email": "test@example.com", "cio_id": "d9c106000001"},
        "recipient": "test@example.com",
    },
}
WEBHOOK_SMS_DELIVERED = {
    "metric": "delivered",
    "event_id": "01HIMPORTWEBHOOK00000000002",
    "object_type": "sms",
    "timestamp": 1613063200,
    "data": {
        "campaign_id": 3,
        "action_id": 11,
        "delivery_id": "ZAIAAVTJVG0QcCok0-0ZKj6yiQ==",
        "identifiers": {"id": "77", "email": None},
        "recipient": "+15551234567",
    },
}
TRACK_WITH_ID = {
    "type": "track",
    "event": "Email Opened",
    "userId": "u1",
    "messageId": "imp-track-1",
    "timestamp": "2024-05-01T09:00:00Z",
    "properties": {"delivery_id": "dlv-A", "campaign_id": 7, "recipient": "u1@example.com"},
}
TRACK_WITHOUT_ID = {
    "event": "Push Opened",
    "userId": "u2",
    "timestamp": "2024-05-01T10:00:00Z",
    "properties": {"delivery_id": "dlv-B", "campaign_id": 7},
}


def _json(item: object) -> str:
    return json.dumps(item)


# Line numbers are 1-based and count every line, blank ones included.
MIXED_LINES = [
    _json(TRACK_WITH_ID),  # 1 stored
    _json(WEBHOOK_EMAIL_SENT),  # 2 stored
    "",  # 3 blank
    _json({"type": "identify", "userId": "u1", "traits": {"email": "u1@example.com"}}),  # 4
    '{"event": "Email Opened", "userId": ',  # 5 malformed JSON
    _json({"type": "track", "event": "Not A Metric", "userId": "u1", "messageId": "imp-bad"}),
    _json(TRACK_WITHOUT_ID),  # 7 stored, with a derived messageId
    _json(
        {
            "event_id": "01HBAD",
            "object_type": "email",
            "metric": "nonsense",
            "timestamp": 1700000000,
            "data": {},
        }
    ),  # 8 rejected
    _json(TRACK_WITH_ID),  # 9 duplicate of line 1
    "[1, 2]",  # 10 not an object
    _json(WEBHOOK_SMS_DELIVERED),  # 11 stored
    _json({"event": "Email Link Clicked", "messageId": "imp-nobody"}),  # 12 no userId/anonymousId
]
MIXED_REJECTED = {
    5: "malformed JSON at column 37: unexpected end of data",
    6: "Not A Metric",
    8: "unknown object_type/metric pair",
    10: "must be a JSON object",
    12: "userId or anonymousId is required",
}


def write_lines(path: Path, lines: list[str], *, compress: bool = False) -> Path:
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def run_import(*args: str) -> tuple[dict[str, int], dict[int, str], int, str]:
    """Run the command in-process: (totals, rejected line -> reason, exit status, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("import_events", *args, stdout=out, stderr=err)
        status = 0
    except CommandError as error:
        status = error.returncode
        err.write(str(error))
    return parse_totals(out.getvalue()), parse_rejections(err.getvalue()), status, err.getvalue()


def parse_totals(stdout: str) -> dict[str, int]:
    totals = {
        name: int(count.replace(",", ""))
        for name, count in re.findall(r"^  (\w+) +([\d,]+)", stdout, re.MULTILINE)
    }
    lines_read = re.search(r"^([\d,]+) lines read", stdout, re.MULTILINE)
    if lines_read:
        totals["lines"] = int(lines_read.group(1).replace(",", ""))
    return totals


def parse_rejections(stderr: str) -> dict[int, str]:
    # A progress bar clears itself with carriage returns before each message.
    found = re.findall(r"^line (\d+): (.+)$", stderr.replace("\r", "\n"), re.MULTILINE)
    numbers = [int(number) for number, _ in found]
    assert numbers == sorted(numbers), "rejections must be reported in line order"
    return {int(number): reason for number, reason in found}


def assert_mixed_rejections(rejected: dict[int, str]) -> None:
    assert set(rejected) == set(MIXED_REJECTED)
    for number, fragment in MIXED_REJECTED.items():
        assert fragment in rejected[number], (number, rejected[number])


@pytest.mark.parametrize("chunk_size", ["1", "2", "5", "1000"])
def test_mixed_file_stores_maps_and_reports_each_line(tmp_path, source, chunk_size):
    path = write_lines(tmp_path / "events.ndjson", MIXED_LINES)

    totals, rejected, status, _ = run_import(
        str(path), "--source", "main", "--chunk-size", chunk_size
    )

    assert totals == {
        "lines": 12,
        "stored": 4,
        "duplicates": 1,
        "ignored": 1,
        "rejected": 5,
        "blank": 1,
    }
    assert_mixed_rejections(rejected)
    assert status == 1  # rejected lines make the exit status non-zero

    events = {event.message_id: event for event in Event.objects.all()}
    assert len(events) == 4
    assert {event.origin for event in events.values()} == {Origin.IMPORT}
    assert {event.source_id for event in events.values()} == {source.source.pk}

    track = events["imp-track-1"]
    assert (track.event, track.channel, track.metric) == ("Email Opened", "email", "opened")
    assert (track.user_id, track.delivery_id, track.campaign_id) == ("u1", "dlv-A", 7)

    sent = events["01HIMPORTWEBHOOK00000000001"]
    assert (sent.event, sent.user_id, sent.email) == ("Email Sent", "42", "test@example.com")
    assert (sent.delivery_id, sent.broadcast_id, sent.action_id) == (
        "RPILAgUBcRhIBqSfeiIwdIYJKxTY",
        9,
        42,
    )
    assert sent.properties["userId"] == "42"
    assert sent.raw == WEBHOOK_EMAIL_SENT

    sms = events["01HIMPORTWEBHOOK00000000002"]
    assert (sms.event, sms.user_id, sms.campaign_id) == ("SMS Delivered", "77", 3)

    derived = [event for mid, event in events.items() if mid.startswith("import-")]
    assert [(e.event, e.user_id, e.delivery_id) for e in derived] == [
        ("Push Opened", "u2", "dlv-B")
    ]


def test_second_run_stores_nothing_new(tmp_path, source):
    path = write_lines(tmp_path / "events.ndjson", MIXED_LINES)
    first, _, _, _ = run_import(str(path), "--chunk-size", "3")
    ids_after_first = set(Event.objects.values_list("id", flat=True))

    second, rejected, status, _ = run_import(str(path), "--chunk-size", "3")

    assert first["stored"] == 4
    assert (second["stored"], second["duplicates"]) == (0, 5)
    assert set(Event.objects.values_list("id", flat=True)) == ids_after_first
    assert_mixed_rejections(rejected)
    assert status == 1


def test_allow_rejects_exits_zero_but_still_reports(tmp_path, db):
    path = write_lines(tmp_path / "events.ndjson", MIXED_LINES)
    totals, rejected, status, _ = run_import(str(path), "--allow-rejects")
    assert status == 0
    assert totals["rejected"] == 5
    assert_mixed_rejections(rejected)


def test_clean_file_exits_zero(tmp_path, db):
    path = write_lines(tmp_path / "events.ndjson", [_json(TRACK_WITH_ID)])
    totals, rejected, status, _ = run_import(str(path))
    assert (status, rejected, totals["stored"]) == (0, {}, 1)


def test_track_lines_without_message_id_are_not_stored_twice(tmp_path, db):
    calls = [
        {"event": "Email Delivered", "userId": f"user-{n}", "properties": {"delivery_id": f"d{n}"}}
        for n in range(3)
    ]
    path = write_lines(tmp_path / "events.ndjson", [_json(call) for call in calls])
    # The same calls re-serialised: other key order, other spacing, "type" spelled out.
    reordered = [
        json.dumps(
            {"type": "track", **dict(reversed(list(call.items())))},
            indent=None,
            separators=(",", ":"),
        )
        for call in calls
    ]
    again = write_lines(tmp_path / "again.ndjson", reordered)

    first, _, _, _ = run_import(str(path))
    second, _, _, _ = run_import(str(path))
    third, _, _, _ = run_import(str(again))

    assert first["stored"] == 3
    assert (second["stored"], second["duplicates"]) == (0, 3)
    assert (third["stored"], third["duplicates"]) == (0, 3)
    assert Event.objects.count() == 3
    assert sorted(Event.objects.values_list("user_id", flat=True)) == ["user-0", "user-1", "user-2"]
    assert all(
        mid.startswith("import-") for mid in Event.objects.values_list("message_id", flat=True)
    )


def test_lines_without_message_id_that_differ_are_different_events(tmp_path, db):
    lines = [
        _json({**TRACK_WITHOUT_ID, "properties": {"delivery_id": "dlv-B"}}),
        _json({**TRACK_WITHOUT_ID, "properties": {"delivery_id": "dlv-C"}}),
    ]
    totals, _, _, _ = run_import(str(write_lines(tmp_path / "e.ndjson", lines)))
    assert totals["stored"] == 2


def test_each_chunk_is_one_transaction(tmp_path, db):
    """Seven lines, alternating kinds, chunks of three: rows commit in three transactions
    (PostgreSQL's xmin), and the calls and webhooks of a chunk share one."""
    lines = []
    for n in range(7):
        if n % 2:
            lines.append(_json({**WEBHOOK_EMAIL_SENT, "event_id": f"01HCHUNK{n:018d}"}))
        else:
            lines.append(_json({**TRACK_WITH_ID, "messageId": f"chunk-{n}"}))
    path = write_lines(tmp_path / "events.ndjson", lines)

    totals, _, status, _ = run_import(str(path), "--chunk-size", "3")

    assert (status, totals["stored"]) == (0, 7)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT message_id, xmin::text FROM {Event._meta.db_table}")  # noqa: S608
        transaction_of = dict(cursor.fetchall())
    line_of = {(f"01HCHUNK{n:018d}" if n % 2 else f"chunk-{n}"): n + 1 for n in range(len(lines))}
    groups: dict[str, set[int]] = {}
    for message_id, xmin in transaction_of.items():
        groups.setdefault(xmin, set()).add(line_of[message_id])
    assert sorted(groups.values(), key=min) == [{1, 2, 3}, {4, 5, 6}, {7}]


def test_gzip_is_detected_from_content_not_name(tmp_path, db):
    # No .gz suffix: the magic bytes decide.
    path = write_lines(tmp_path / "events.ndjson", MIXED_LINES, compress=True)
    totals, rejected, _, _ = run_import(str(path))
    assert (totals["lines"], totals["stored"], totals["duplicates"]) == (12, 4, 1)
    assert_mixed_rejections(rejected)


def test_concatenated_gzip_members_keep_counting_lines(tmp_path, db):
    first = gzip.compress(("\n".join(MIXED_LINES[:6]) + "\n").encode())
    second = gzip.compress(("\n".join(MIXED_LINES[6:]) + "\n").encode())
    path = tmp_path / "events.ndjson.gz"
    path.write_bytes(first + second)
    totals, rejected, _, _ = run_import(str(path))
    assert (totals["lines"], totals["stored"]) == (12, 4)
    assert_mixed_rejections(rejected)


def test_truncated_gzip_stops_with_status_2_and_a_rerun_finishes(tmp_path, db):
    lines = [_json({**TRACK_WITH_ID, "messageId": f"trunc-{n}"}) for n in range(2000)]
    whole = gzip.compress(("\n".join(lines) + "\n").encode())
    cut = tmp_path / "cut.ndjson.gz"
    cut.write_bytes(whole[: len(whole) // 2])

    totals, _, status, stderr = run_import(str(cut), "--chunk-size", "100")

    assert status == 2
    assert "unreadable" in stderr and "run the same command again" in stderr
    # What was decompressed before the cut is stored, and the totals say so truthfully.
    assert 0 < totals["stored"] < 2000
    assert Event.objects.count() == totals["stored"] == totals["lines"]
    assert f"lines 1-{totals['lines']:,} are done" in stderr

    fixed = tmp_path / "whole.ndjson.gz"
    fixed.write_bytes(whole)
    rerun, _, status, _ = run_import(str(fixed))
    assert status == 0
    assert (rerun["stored"], rerun["duplicates"]) == (2000 - totals["stored"], totals["stored"])
    assert Event.objects.count() == 2000


def test_line_over_the_limit_is_rejected_and_the_next_line_still_counts(tmp_path, db):
    huge = _json({**TRACK_WITH_ID, "messageId": "huge", "properties": {"pad": "a" * 1048576}})
    lines = [_json(TRACK_WITH_ID), huge, _json(WEBHOOK_EMAIL_SENT)]
    totals, rejected, _, _ = run_import(str(write_lines(tmp_path / "e.ndjson", lines)))
    assert set(rejected) == {2}
    assert "longer than 1024 KB" in rejected[2]
    assert (totals["lines"], totals["stored"]) == (3, 2)


def test_byte_order_mark_and_crlf_line_ends_are_accepted(tmp_path, db):
    path = tmp_path / "windows.ndjson"
    path.write_bytes(
        b"\xef\xbb\xbf"
        + _json(TRACK_WITH_ID).encode()
        + b"\r\n"
        + _json(WEBHOOK_EMAIL_SENT).encode()
        + b"\r\n"
    )
    totals, rejected, status, _ = run_import(str(path))
    assert (status, rejected, totals["stored"]) == (0, {}, 2)


def test_source_is_found_by_name_or_slug(tmp_path, make_source):
    workspace = make_source("Main Workspace").source
    path = write_lines(tmp_path / "e.ndjson", [_json(TRACK_WITH_ID)])
    run_import(str(path), "--source", "Main Workspace")
    other = write_lines(tmp_path / "f.ndjson", [_json(WEBHOOK_EMAIL_SENT)])
    run_import(str(other), "--source", workspace.slug)
    assert set(Event.objects.values_list("source_id", flat=True)) == {workspace.pk}


def test_unknown_source_fails_before_storing_anything(tmp_path, source):
    path = write_lines(tmp_path / "e.ndjson", MIXED_LINES)
    _, _, status, stderr = run_import(str(path), "--source", "no-such-source")
    assert status == 2
    assert "no source named 'no-such-source'" in stderr
    assert not Event.objects.exists()


def test_missing_file_fails_with_status_2(tmp_path, db):
    _, _, status, stderr = run_import(str(tmp_path / "absent.ndjson"))
    assert status == 2
    assert "cannot read" in stderr


def test_progress_bar_only_when_asked_off_a_terminal(tmp_path, db):
    path = write_lines(tmp_path / "e.ndjson", [_json(TRACK_WITH_ID)])
    _, _, _, quiet = run_import(str(path))
    _, _, _, shown = run_import(str(path), "--progress")
    assert "%|" not in quiet
    size = path.stat().st_size
    assert "100%|" in shown and f"{size}/{size}" in shown  # by bytes for a file


# ------------------------------------------------------------------------------------------
# A real process: stdin, gzip on stdin, exit statuses as a shell sees them
# ------------------------------------------------------------------------------------------


def _subprocess_env(database_url: str | None = None) -> dict[str, str]:
    """The environment of this test run, pointed at the test database (committed rows)."""
    env = dict(os.environ)
    if database_url is None:
        parts = urlsplit(env["DATABASE_URL"])
        database_url = urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"]))
    env["DATABASE_URL"] = database_url
    return env


def run_process(args: list[str], stdin: bytes, env: dict[str, str] | None = None):
    return subprocess.run(
        [sys.executable, "manage.py", "import_events", *args],
        input=stdin,
        capture_output=True,
        cwd=PROJECT_ROOT,
        env=env or _subprocess_env(),
        timeout=120,
    )


@pytest.mark.django_db(transaction=True)
def test_stdin_import_in_a_real_process(source):
    data = ("\n".join(MIXED_LINES) + "\n").encode()

    first = run_process(["-", "--source", "main"], data)
    second = run_process(["-", "--source", "main"], data)

    assert first.returncode == 1, first.stderr.decode()
    assert parse_totals(first.stdout.decode()) == {
        "lines": 12,
        "stored": 4,
        "duplicates": 1,
        "ignored": 1,
        "rejected": 5,
        "blank": 1,
    }
    assert_mixed_rejections(parse_rejections(first.stderr.decode()))
    assert "Traceback" not in first.stderr.decode()
    assert "%|" not in first.stderr.decode()  # stderr is a pipe: no progress bar
    assert parse_totals(second.stdout.decode())["stored"] == 0
    assert Event.objects.filter(source=source.source, origin=Origin.IMPORT).count() == 4


@pytest.mark.django_db(transaction=True)
def test_gzip_on_stdin_in_a_real_process():
    data = gzip.compress(("\n".join(MIXED_LINES) + "\n").encode())

    result = run_process(["-", "--allow-rejects", "--progress"], data)

    assert result.returncode == 0, result.stderr.decode()
    assert parse_totals(result.stdout.decode())["stored"] == 4
    assert_mixed_rejections(parse_rejections(result.stderr.decode()))
    assert "12 lines" in result.stderr.decode()  # progress by lines on stdin
    assert Event.objects.count() == 4


def test_database_down_is_a_clear_failure_not_a_traceback(tmp_path):
    # Nothing listens on port 1 of the loopback: a real refused connection.
    env = _subprocess_env("postgres://postgres@127.0.0.1:1/metrics")
    env["DATABASE_CONNECT_TIMEOUT"] = "2"
    data = ("\n".join(MIXED_LINES) + "\n").encode()

    result = run_process(["-"], data, env=env)

    assert result.returncode == 2
    stderr = result.stderr.decode()
    assert "database failed" in stderr and "no line was imported" in stderr
    assert "Traceback" not in stderr


def test_integers_beyond_64_bits_are_imported_exactly_and_once(tmp_path, db):
    big = 2**70
    call = {"event": "Email Opened", "userId": "u9", "properties": {"delivery_id": "d9", "n": big}}
    path = write_lines(tmp_path / "big.ndjson", [_json(call)])
    first, rejected, _, _ = run_import(str(path))
    second, _, _, _ = run_import(str(path))
    assert (first["stored"], rejected) == (1, {})
    assert (second["stored"], second["duplicates"]) == (0, 1)  # the derived id is stable
    event = Event.objects.get()
    assert event.properties["n"] == big and event.raw["properties"]["n"] == big
