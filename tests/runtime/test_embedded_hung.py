"""A Redis that runs but no longer answers (stopped with SIGSTOP) is taken for hung after 30 s:
the wrapper ends it and starts it again on the same port and password."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from contextlib import suppress

import pytest
import redis

from tests.runtime.test_embedded import (
    HOLDER,
    data_dir,  # noqa: F401 (the fixture)
    end,
    read_json_line,
    running,
    start_wrapper,
    wrapper_env,
)

pytestmark = pytest.mark.slow


def test_a_silent_redis_is_ended_and_started_again(tmp_path, data_dir):  # noqa: F811
    log = tmp_path / "wrapper.log"
    env = wrapper_env(data_dir, DATABASE_URL="postgres://unused@127.0.0.1:1/unused")
    wrapper = start_wrapper([sys.executable, "-c", HOLDER], env, log)
    hung = None
    try:
        url = read_json_line(wrapper, timeout=120)["REDIS_URL"]
        port = json.loads((data_dir / "redis" / "embedded.json").read_text())["port"]
        hung = int((data_dir / "redis" / "redis.pid").read_text())
        os.kill(hung, signal.SIGSTOP)
        stopped_at = time.monotonic()
        line = f"embedded: Redis was hung; started again on 127.0.0.1:{port}"
        deadline = stopped_at + 120
        while line not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            assert wrapper.poll() is None, log.read_text()
            time.sleep(0.2)
        restarted_at = time.monotonic()
        assert restarted_at - stopped_at >= 30  # not taken for hung at once
        assert not running(hung)
        with redis.Redis.from_url(url, socket_timeout=2) as client:
            assert client.ping()
        print(f"\nRedis SIGSTOP -> answering again after {restarted_at - stopped_at:.1f} s")
    finally:
        if hung is not None:
            with suppress(ProcessLookupError):
                os.kill(hung, signal.SIGCONT)
        end(wrapper)
