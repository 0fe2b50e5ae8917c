"""The pybreaker drop-in. The behaviours both share run against pybreaker 1.4.1 itself and against
breakerd.pybreaker, so the tests say what pybreaker does, not what we think it does; the rest are
the shim's own (policy in breakerd, events from other replicas, the documented differences)."""

from __future__ import annotations

import asyncio

import pybreaker as real
import pytest

import breakerd.pybreaker as shim
from breakerd import Breakers
from conftest import state_of, wait_for


class Boom(Exception):
    pass


class Business(Exception):
    pass


def boom():
    raise Boom()


class Recorder(real.CircuitBreakerListener, shim.CircuitBreakerListener):
    def __init__(self):
        self.calls, self.successes, self.failures, self.changes = 0, 0, 0, []

    def before_call(self, cb, func, *args, **kwargs):
        self.calls += 1

    def success(self, cb):
        self.successes += 1

    def failure(self, cb, exc):
        self.failures += 1

    def state_change(self, cb, old_state, new_state):
        self.changes.append((old_state.name if old_state else None, new_state.name))


@pytest.fixture(params=["pybreaker", "breakerd"])
def make(request, breakers, name):
    """make(**pybreaker keywords) -> a breaker of either kind, and settle(), which waits until the
    outcomes so far have reached the breaker (at once for pybreaker; breakerd's go in the background)."""

    def build(**kwargs):
        if request.param == "pybreaker":
            return real.CircuitBreaker(**kwargs)
        return shim.CircuitBreaker(name=name, breakers=breakers, **kwargs)

    def settle():
        assert breakers.flush(15)

    build.kind = request.param
    build.settle = settle
    return build


def fail(cb):
    with pytest.raises((Boom, real.CircuitBreakerError, shim.CircuitBreakerError)):
        cb.call(boom)


def test_fail_max_failures_open_it(make):
    cb = make(fail_max=3, reset_timeout=60)
    assert cb.current_state == "closed"
    for _ in range(3):
        fail(cb)
    make.settle()
    assert cb.current_state == "open"
    ran = []
    with pytest.raises((real.CircuitBreakerError, shim.CircuitBreakerError)):
        cb.call(lambda: ran.append(1))
    assert ran == []


def test_fewer_failures_keep_it_closed(make):
    cb = make(fail_max=3, reset_timeout=60)
    for _ in range(2):
        fail(cb)
    make.settle()
    assert cb.current_state == "closed"
    assert cb.call(lambda: "ok") == "ok"


def test_an_excluded_exception_counts_as_a_success(make):
    listener = Recorder()
    cb = make(fail_max=2, reset_timeout=60, exclude=[Business, lambda e: isinstance(e, KeyError)], listeners=[listener])
    for _ in range(3):
        with pytest.raises(Business):
            cb.call(lambda: (_ for _ in ()).throw(Business()))
    with pytest.raises(KeyError):
        cb.call(lambda: {}["x"])
    make.settle()
    assert cb.current_state == "closed"
    assert (listener.calls, listener.successes, listener.failures) == (4, 4, 0)
    assert not cb.is_system_error(Business()) and cb.is_system_error(Boom())


def test_reset_timeout_then_a_successful_trial_closes_it(make):
    cb = make(fail_max=1, reset_timeout=0.05)
    fail(cb)
    make.settle()
    # The reset timeout passes; pybreaker and breakerd then let one trial call through.
    wait_for(lambda: _succeeds(cb), "a trial call after reset_timeout")
    make.settle()
    assert cb.current_state == "closed"


def test_success_threshold_trials_close_it(make):
    cb = make(fail_max=1, reset_timeout=0.05, success_threshold=2)
    fail(cb)
    make.settle()
    wait_for(lambda: _succeeds(cb), "the first trial")
    make.settle()
    assert cb.current_state == "half-open"
    wait_for(lambda: _succeeds(cb), "the second trial")
    make.settle()
    assert cb.current_state == "closed"


def test_a_failed_trial_opens_it_again(make):
    cb = make(fail_max=1, reset_timeout=0.05)
    fail(cb)
    make.settle()
    ran = []

    def failing_trial():
        ran.append(1)
        raise Boom()

    # pybreaker raises CircuitBreakerError for the trial that re-opens it; the shim raises the
    # trial's own error (its outcome reaches breakerd in the background).
    wait_for(lambda: _fails_with(cb, failing_trial) and ran, "a trial call that fails")
    make.settle()
    assert cb.current_state == "open"


def test_listeners_hear_calls_and_state_changes(make):
    listener = Recorder()
    cb = make(fail_max=2, reset_timeout=60, listeners=[listener])
    if make.kind == "breakerd":
        assert cb.breakers.wait_events_live(15)
    fail(cb)
    fail(cb)
    wait_for(lambda: ("closed", "open") in listener.changes, "the closed -> open state change")
    assert (listener.calls, listener.successes, listener.failures) == (2, 0, 2)
    make.settle()
    with pytest.raises((real.CircuitBreakerError, shim.CircuitBreakerError)):
        cb.call(lambda: None)
    assert listener.calls == 2  # a denied call is not a call


def test_calling_and_the_decorator(make):
    cb = make(fail_max=5, reset_timeout=60)
    with cb.calling():
        pass
    with pytest.raises(Boom):
        with cb.calling():
            raise Boom()

    @cb
    def double(x):
        return 2 * x

    @cb()
    def triple(x):
        return 3 * x

    assert (double(2), triple(2)) == (4, 6)
    assert double.__name__ == "double"


def test_names_and_properties(make):
    cb = make(fail_max=7, reset_timeout=12, success_threshold=3)
    assert (cb.fail_max, cb.reset_timeout, cb.success_threshold) == (7, 12, 3)
    assert (real.STATE_OPEN, real.STATE_CLOSED, real.STATE_HALF_OPEN) == (shim.STATE_OPEN, shim.STATE_CLOSED, shim.STATE_HALF_OPEN)
    assert cb.state.name == "closed"
    cb.add_excluded_exceptions(Business, KeyError)
    cb.remove_excluded_exception(KeyError)
    assert cb.excluded_exceptions == (Business,)


# -- the shim's own --------------------------------------------------------------------------------


def test_the_keywords_become_the_breakers_policy_once(admin, breakers, name):
    cb = shim.CircuitBreaker(fail_max=4, reset_timeout=2.5, success_threshold=2, name=name, breakers=breakers)
    cb.call(lambda: None)
    config = dict(w.split("=") for w in admin.execute_command("CONFIG", "GET", name).split())
    assert {k: config[k] for k in shim.policy_for(4, 2.5, 2)} == {
        "min_calls": "4", "failure_rate": "1", "open_ms": "2500", "open_backoff": "1", "max_open_ms": "2500",
        "half_open_permits": "1", "success_threshold": "2",
    }
    history = len(admin.execute_command("HISTORY", name))
    again = shim.CircuitBreaker(fail_max=4, reset_timeout=2.5, success_threshold=2, name=name, breakers=breakers)
    again.call(lambda: None)  # another replica with the same keywords: nothing to set
    assert len(admin.execute_command("HISTORY", name)) == history
    again.reset_timeout = 600  # beyond breakerd's default max_open_ms
    again.call(lambda: None)
    assert "open_ms=600000" in admin.execute_command("CONFIG", "GET", name)


def test_a_success_in_the_window_keeps_it_closed_where_pybreaker_would_trip(breakers, name):
    """The documented difference: pybreaker counts consecutive failures, breakerd failures in a
    rolling window, so a success inside the window holds the failure rate below 1."""
    cb = shim.CircuitBreaker(fail_max=2, reset_timeout=60, name=name, breakers=breakers)
    pyb = real.CircuitBreaker(fail_max=2, reset_timeout=60)
    for b in (cb, pyb):
        b.call(lambda: None)
        fail(b)
        fail(b)
    breakers.flush(15)
    assert (pyb.current_state, cb.current_state) == ("open", "closed")


def test_replicas_share_one_breaker(address, address2, name):
    one, two = Breakers(address), Breakers(address2)
    a = shim.CircuitBreaker(fail_max=2, reset_timeout=60, name=name, breakers=one)
    b = shim.CircuitBreaker(fail_max=2, reset_timeout=60, name=name, breakers=two)
    fail(a)
    fail(b)
    one.flush(15)
    two.flush(15)
    assert a.current_state == b.current_state == "open"
    one.close()
    two.close()


def test_async_functions_are_awaited_inside_the_breaker(admin, breakers, name):
    cb = shim.CircuitBreaker(fail_max=1, reset_timeout=60, name=name, breakers=breakers)

    @cb
    async def fetch():
        await asyncio.sleep(0)
        raise Boom()

    with pytest.raises(Boom):
        asyncio.run(fetch())
    breakers.flush(15)
    assert cb.current_state == "open"  # pybreaker would have counted the coroutine object a success


def test_open_and_close_act_fleet_wide(admin, breakers, name):
    cb = shim.CircuitBreaker(fail_max=5, reset_timeout=60, name=name, breakers=breakers)
    cb.open()
    assert state_of(admin, name)["mode"] == "forced_open"
    with pytest.raises(shim.CircuitBreakerError):
        cb.call(lambda: None)
    cb.close()
    assert state_of(admin, name)["state"] == "closed"
    with pytest.raises(NotImplementedError):
        cb.half_open()


def test_what_the_shim_refuses(breakers):
    with pytest.raises(TypeError, match="name is required"):
        shim.CircuitBreaker(fail_max=5, breakers=breakers)
    with pytest.raises(TypeError, match="state_storage"):
        shim.CircuitBreaker(name="x", state_storage=object(), breakers=breakers)
    with pytest.raises(ValueError, match="fail_max"):
        shim.CircuitBreaker(name="x", fail_max=0, breakers=breakers)
    with pytest.raises(ValueError, match="reset_timeout"):
        shim.CircuitBreaker(name="x", reset_timeout=0, breakers=breakers)


def test_a_replica_without_the_admin_password_keeps_the_operators_policy(auth_address, passwords, name):
    replica = Breakers(auth_address, password=passwords[0])
    cb = shim.CircuitBreaker(fail_max=3, name=name, breakers=replica)
    assert cb.call(lambda: "ok") == "ok"  # NOPERM on CONFIG SET is logged, the call goes on
    replica.close()


def _succeeds(cb) -> bool:
    try:
        cb.call(lambda: None)
        return True
    except (real.CircuitBreakerError, shim.CircuitBreakerError):
        return False


def _fails_with(cb, func) -> bool:
    """Calls func through cb; whether it raised anything (a deny included)."""
    try:
        cb.call(func)
    except (Boom, real.CircuitBreakerError, shim.CircuitBreakerError):
        return True
    return False


def test_breakerd_unreachable_falls_back_to_the_local_breaker(closed_address, name):
    gone = Breakers(closed_address)  # on_unreachable="local": pybreaker's own rule, in this process
    cb = shim.CircuitBreaker(fail_max=2, name=name, breakers=gone)
    assert cb.call(lambda: "ran") == "ran"
    for _ in range(2):
        fail(cb)
    with pytest.raises(shim.CircuitBreakerError) as caught:
        cb.call(lambda: "ran")
    assert caught.value.source == "local"
    gone.close()
