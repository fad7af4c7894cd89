"""Beat's heartbeat and the health check that reads it (the live beat runs in test_compose)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from celery.schedules import crontab

from metrics_source.celery import app
from metrics_source.runtime.beat import (
    DEFAULT_INTERVAL_SECONDS,
    GRACE_SECONDS,
    HeartbeatScheduler,
    beat_health,
    heartbeat_path,
    main,
)


@pytest.fixture
def scheduler(tmp_path):
    """A HeartbeatScheduler on a schedule of the test's (the settings' is put back after)."""
    made: list[HeartbeatScheduler] = []
    settings_schedule = app.conf.beat_schedule

    def make(schedule: dict) -> HeartbeatScheduler:
        app.conf.beat_schedule = schedule
        beat = HeartbeatScheduler(app, schedule_filename=str(tmp_path / "schedule"), lazy=False)
        made.append(beat)
        return beat

    yield make
    app.conf.beat_schedule = settings_schedule
    for beat in made:
        beat.close()


def test_the_deadline_allows_two_of_the_shortest_intervals_and_some_grace(tmp_path, scheduler):
    beat = scheduler(
        {
            "often": {"task": "metrics_source.tasks.forwarding_sweep", "schedule": 2.0},
            "rarely": {"task": "metrics_source.tasks.summaries_refresh", "schedule": 60.0},
        },
    )
    assert beat._shortest_interval() == 2.0
    before = time.time()
    beat._write_heartbeat()
    after = time.time()
    deadline = float(heartbeat_path(tmp_path / "schedule").read_text())
    allowed = 2 * 2.0 + GRACE_SECONDS
    assert before + allowed - 0.001 <= deadline <= after + allowed + 0.001
    assert beat_health(tmp_path / "schedule", now=deadline - 1) is None
    late = beat_health(tmp_path / "schedule", now=deadline + 12)
    assert late == "beat has handed no task to the broker for 12 s past its due time"


def test_crontab_entries_only_fall_back_to_the_default_interval(scheduler):
    beat = scheduler(
        {"nightly": {"task": "metrics_source.tasks.summaries_refresh", "schedule": crontab(0, 3)}},
    )
    assert beat._shortest_interval() == DEFAULT_INTERVAL_SECONDS
    beat.schedule["nightly"].schedule = timedelta(seconds=7)  # not a schedule object: ignored
    assert beat._shortest_interval() == DEFAULT_INTERVAL_SECONDS


def test_the_check_command_says_what_is_wrong(tmp_path, capsys):
    schedule = tmp_path / "schedule"
    assert main([str(schedule)]) == 1
    assert "handed no task to the broker yet" in capsys.readouterr().err
    heartbeat_path(schedule).write_text("not a time\n")
    assert main([str(schedule)]) == 1
    assert "cannot read beat's heartbeat" in capsys.readouterr().err
    heartbeat_path(schedule).write_text("1.0\n")  # 1970
    assert main([str(schedule)]) == 1
    assert "past its due time" in capsys.readouterr().err
    assert main([]) == 2
