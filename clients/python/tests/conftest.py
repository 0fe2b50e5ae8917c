"""Fixtures: the breakerd processes scripts/test-python started, a unique breaker name per test, and
waiting on conditions (never on the wall clock: CI runs on a loaded 2-core machine)."""

from __future__ import annotations

import os
import re
import secrets
import socket
import time
from typing import Callable, Iterator

import pytest
import redis

import breakerd

WAIT = 15.0  # a generous bound for a condition that should hold within milliseconds


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run the Python tests with scripts/test-python", pytrace=False)
    return value


def wait_for(condition: Callable[[], object], what: str, timeout: float = WAIT) -> object:
    """Poll `condition` until it returns something truthy; fail after `timeout` saying `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


@pytest.fixture(scope="session")
def address() -> str:
    return _env("BREAKERD_TEST_ADDRESS")


@pytest.fixture(scope="session")
def address2() -> str:
    """A second breakerd sharing the first one's Redis and key prefix: another replica's breakerd."""
    return _env("BREAKERD_TEST_ADDRESS_2")


@pytest.fixture(scope="session")
def auth_address() -> str:
    return _env("BREAKERD_TEST_AUTH_ADDRESS")


@pytest.fixture(scope="session")
def passwords() -> tuple[str, str]:
    return _env("BREAKERD_TEST_PASSWORD"), _env("BREAKERD_TEST_ADMIN_PASSWORD")


@pytest.fixture
def name(request: pytest.FixtureRequest) -> str:
    """A breaker name of this test's own, so tests share breakerd without flushing anything."""
    stem = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name)[:60].strip("-")
    return f"py-{stem}-{secrets.token_hex(3)}"


def _redis(address: str, **kwargs: object) -> redis.Redis:
    host, _, port = address.rpartition(":")
    return redis.Redis(host=host, port=int(port), decode_responses=True, socket_timeout=5, **kwargs)


@pytest.fixture
def admin(address: str) -> Iterator[redis.Redis]:
    """A plain redis-py connection for arranging: CONFIG SET, FORCE, RESET, STATE."""
    client = _redis(address)
    yield client
    client.close()


@pytest.fixture
def breakers(address: str) -> Iterator[breakerd.Breakers]:
    b = breakerd.Breakers(address)
    yield b
    b.close()


def set_policy(admin: redis.Redis, name: str, **policy: object) -> None:
    args: list[object] = []
    for key, value in policy.items():
        args += [key, value]
    assert admin.execute_command("CONFIG", "SET", name, *args) == "OK"


def state_of(admin: redis.Redis, name: str) -> dict[str, str]:
    words = admin.execute_command("STATE", name).split()
    fields = dict(w.split("=", 1) for w in words[2:] if "=" in w)
    fields["state"] = words[1]
    return fields


def trip(admin: redis.Redis, name: str, open_ms: int = 60_000) -> None:
    """Open `name` the way failures do: min_calls 1 and one reported FAILURE."""
    set_policy(admin, name, min_calls=1, open_ms=open_ms, max_open_ms=max(open_ms, 300_000))
    permit = admin.execute_command("ACQUIRE", name).split()[1]
    assert admin.execute_command("REPORT", name, permit, "FAILURE").split()[:2] == ["OK", "open"]


@pytest.fixture
def closed_address() -> Iterator[str]:
    """An address nothing listens on: a bound socket that never listens refuses every connection,
    and holding it keeps any other process from taking the port meanwhile."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    yield f"127.0.0.1:{sock.getsockname()[1]}"
    sock.close()
