"""A Redis killed while another program takes its port: the wrapper says so (naming the port
and who holds it, never the password), tries again with growing waits, and once the port is
free again starts Redis on it, so the URL its command was given still works."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sys
import time

import pytest
import redis

from tests.runtime.test_embedded import (
    HOLDER,
    data_dir,  # noqa: F401 (the fixture)
    end,
    read_json_line,
    start_wrapper,
    wait_gone,
    wrapper_env,
)

pytestmark = pytest.mark.slow


def wait_for(condition, timeout: float, what: str, log):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} within {timeout} s\n{log.read_text()}")


def bound(sock: socket.socket, port: int) -> bool:
    # The killed server's socket may close a moment after its process is gone.
    try:
        sock.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False


def test_a_taken_port_is_named_and_redis_comes_back_on_it_once_free(tmp_path, data_dir):  # noqa: F811
    log = tmp_path / "wrapper.log"
    env = wrapper_env(data_dir, DATABASE_URL="postgres://unused@127.0.0.1:1/unused")
    wrapper = start_wrapper([sys.executable, "-c", HOLDER], env, log)
    squatter = None
    try:
        url = read_json_line(wrapper, timeout=120)["REDIS_URL"]
        state = json.loads((data_dir / "redis" / "embedded.json").read_text())
        # Another program takes the port before the wrapper's next look (the wrapper is held
        # meanwhile, so that look cannot come first).
        os.kill(wrapper.pid, signal.SIGSTOP)
        killed = int((data_dir / "redis" / "redis.pid").read_text())
        os.kill(killed, signal.SIGKILL)
        assert wait_gone([killed], timeout=10) == []
        squatter = socket.socket()
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        wait_for(lambda: bound(squatter, state["port"]), 10, "the port not released", log)
        squatter.listen()
        os.kill(wrapper.pid, signal.SIGCONT)

        taken = re.compile(
            rf"embedded: Redis is gone and did not start again: port 127\.0\.0\.1:{state['port']}"
            rf" is taken by another program \(pid {os.getpid()}, [^)]+\); next try in (\d+) s"
        )
        wait_for(lambda: len(taken.findall(log.read_text())) >= 3, 30, "no retries", log)
        waits = [int(wait) for wait in taken.findall(log.read_text())]
        assert waits[:3] == [1, 2, 4]  # backoff
        squatter.close()
        squatter = None

        def answers() -> bool:
            try:
                with redis.Redis.from_url(url, socket_timeout=1) as client:
                    return bool(client.ping())
            except (redis.RedisError, OSError):
                return False

        started = f"Redis was gone; started again on 127.0.0.1:{state['port']}"
        wait_for(lambda: started in log.read_text(), 60, "Redis not started again", log)
        assert answers()  # the URL the command was given works again
        assert state["password"] not in log.read_text()
        assert wrapper.poll() is None
    finally:
        if squatter is not None:
            squatter.close()
        end(wrapper)
