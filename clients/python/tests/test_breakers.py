"""Breakers and AsyncBreakers against a real breakerd: every calling form, sync and async, the
open-state cache, events, the reporter name, error replies and breakerd unreachable."""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest

import breakerd
from breakerd import FAILURE, SUCCESS, AsyncBreakers, Breakers, BreakerdError, CircuitBreakerError, Decision, LocalPolicy
from conftest import set_policy, state_of, trip, wait_for


class Boom(Exception):
    pass


class NotFound(Exception):
    pass


def counted(admin, name, breakers):
    assert breakers.flush(15), "reports still pending"
    s = state_of(admin, name)
    return int(s["calls"]), int(s["failures"])


# -- replies ---------------------------------------------------------------------------------------


def test_acquire_replies_parse_with_and_without_the_reason_word():
    permit = breakerd.parse_acquire("p", "PERMIT 0.1.17 closed")
    assert (permit.permitted, permit.permit, permit.state, permit.degraded) == (True, "0.1.17", "closed", False)
    assert breakerd.parse_acquire("p", "PERMIT L0.1.17 closed degraded").degraded
    deny = breakerd.parse_acquire("p", "DENY open 2500")
    assert (deny.permitted, deny.state, deny.retry_after, deny.reason) == (False, "open", 2.5, "open")
    assert breakerd.parse_acquire("p", "DENY half_open 900").reason == "trials_busy"
    future = breakerd.parse_acquire("p", "DENY open 1000 forced_open by=ops")
    assert (future.reason, future.degraded) == ("forced_open", False)
    degraded = breakerd.parse_acquire("p", "DENY open 1000 degraded")
    assert (degraded.reason, degraded.degraded) == ("degraded", True)
    with pytest.raises(BreakerdError, match="unexpected ACQUIRE reply"):
        breakerd.parse_acquire("p", "MAYBE")


def test_the_real_breakerd_replies_as_parsed(admin, name, breakers):
    assert breakers.acquire(name).permitted
    trip(admin, name)
    deny = breakers.acquire(name)
    assert (deny.permitted, deny.state, deny.reason, deny.source) == (False, "open", "open", "breakerd")
    assert 0 < deny.retry_after <= 60
    # A half-open breaker whose one trial place is taken.
    set_policy(admin, name, open_ms=1)
    admin.execute_command("FORCE", name, "OPEN", "TTL", 1)
    wait_for(lambda: admin.execute_command("ACQUIRE", name).split()[2] == "half_open", "a half-open trial")
    busy = Breakers(breakers.url, cache_open_state=False).acquire(name)
    assert (busy.permitted, busy.state, busy.reason) == (False, "half_open", "trials_busy")


def test_bad_arguments_are_refused_clearly(address):
    with pytest.raises(ValueError, match="on_unreachable"):
        Breakers(address, on_unreachable="maybe")
    with pytest.raises(ValueError, match="timeout"):
        Breakers(address, timeout=0)
    with pytest.raises(TypeError, match="exclude"):
        Breakers(address).breaker("x", exclude=("not an exception",))
    with pytest.raises(ValueError, match="outcome"):
        Breakers(address).report(Decision("x", True, "closed", permit="0.1.1"), "MAYBE")


def test_a_bad_breaker_name_is_an_error_reply_not_an_outage(breakers):
    with pytest.raises(BreakerdError, match="invalid breaker name") as caught:
        breakers.breaker("pay ments").call(lambda: 1)
    assert caught.value.code == "ERR"


# -- calling forms ---------------------------------------------------------------------------------


def test_decorator_on_def_reports_success_and_failure(admin, name, breakers):
    @breakers.breaker(name)
    def charge(amount):
        if amount < 0:
            raise Boom(amount)
        return amount * 2

    assert charge(21) == 42
    with pytest.raises(Boom):
        charge(-1)
    assert counted(admin, name, breakers) == (2, 1)
    assert (breakers.reports_sent, breakers.report_errors) == (2, 0)
    assert charge.__name__ == "charge"


def test_decorator_on_async_def_reports_success_and_failure(admin, name):
    async def main():
        async with AsyncBreakers(admin_address(admin)) as breakers:

            @breakers.breaker(name)
            async def charge(amount):
                await asyncio.sleep(0)
                if amount < 0:
                    raise Boom(amount)
                return amount * 2

            assert await charge(21) == 42
            with pytest.raises(Boom):
                await charge(-1)
            assert await breakers.flush_async(15)
            return breakers.reports_sent

    assert asyncio.run(main()) == 2
    s = state_of(admin, name)
    assert (s["calls"], s["failures"]) == ("2", "1")


def test_with_block(admin, name, breakers):
    breaker = breakers.breaker(name)
    with breaker as decision:
        assert decision.permitted and decision.source == "breakerd"
    with pytest.raises(Boom):
        with breaker:
            raise Boom()
    assert counted(admin, name, breakers) == (2, 1)


def test_async_with_block(admin, name):
    async def main():
        breakers = AsyncBreakers(admin_address(admin))
        breaker = breakers.breaker(name)
        async with breaker:
            pass
        with pytest.raises(Boom):
            async with breaker:
                raise Boom()
        await breakers.aclose()

    asyncio.run(main())
    s = state_of(admin, name)
    assert (s["calls"], s["failures"]) == ("2", "1")


def test_nested_and_concurrent_with_blocks_report_their_own_permits(admin, name, breakers):
    breaker = breakers.breaker(name)
    errors = []

    def worker():
        try:
            for _ in range(5):
                with breaker:
                    with breaker:
                        pass
        except Exception as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert counted(admin, name, breakers) == (40, 0)
    assert breakers.report_errors == 0  # each permit reported once


def test_call_and_call_async(admin, name, breakers):
    breaker = breakers.breaker(name)
    assert breaker.call(lambda a, b=0: a + b, 1, b=2) == 3

    async def add(a, b=0):
        return a + b

    assert asyncio.run(breaker.call_async(add, 4, b=5)) == 9
    assert counted(admin, name, breakers) == (2, 0)


def test_excluded_errors_are_ignored_and_is_failure_marks_bad_results(admin, name, breakers):
    breaker = breakers.breaker(name, exclude=(NotFound, lambda e: isinstance(e, KeyError)), is_failure=lambda r: r is None)
    with pytest.raises(NotFound):
        breaker.call(lambda: (_ for _ in ()).throw(NotFound()))
    with pytest.raises(KeyError):
        breaker.call(lambda: {}["missing"])
    assert breaker.call(lambda: None) is None
    assert breaker.call(lambda: 1) == 1
    assert counted(admin, name, breakers) == (2, 1)  # the two excluded errors count nothing


def test_cancellation_is_not_a_failure(admin, name):
    async def main():
        breakers = AsyncBreakers(admin_address(admin))
        started = asyncio.Event()

        @breakers.breaker(name)
        async def hang():
            started.set()
            await asyncio.Event().wait()

        task = asyncio.ensure_future(hang())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await breakers.aclose()
        return breakers.reports_sent

    assert asyncio.run(main()) == 1
    assert state_of(admin, name)["calls"] == "0"  # reported as IGNORE


def test_latency_goes_with_the_report(admin, name, breakers):
    set_policy(admin, name, slow_call_ms=1000)
    decision = breakers.acquire(name)
    breakers.report(decision, SUCCESS, latency=2.5)  # 2500 ms, whatever the wall clock says
    breakers.flush(15)
    s = state_of(admin, name)
    assert (s["calls"], s["slow"]) == ("1", "1")


# -- denies ----------------------------------------------------------------------------------------


def test_deny_raises_with_state_retry_after_and_reason(admin, name, breakers):
    trip(admin, name)
    ran = []
    with pytest.raises(CircuitBreakerError) as caught:
        breakers.breaker(name).call(lambda: ran.append(1))
    error = caught.value
    assert ran == []
    assert (error.breaker, error.state, error.reason, error.source) == (name, "open", "open", "breakerd")
    assert 0 < error.retry_after <= 60
    with pytest.raises(CircuitBreakerError):
        with breakers.breaker(name):
            ran.append(2)
    assert ran == []


def test_deny_returns_the_fallback_called_with_the_call_arguments(admin, name, breakers):
    trip(admin, name)

    @breakers.breaker(name, fallback=lambda order, currency="EUR": f"cached {order} {currency}")
    def quote(order, currency="EUR"):
        raise AssertionError("must not run")

    assert quote(7, currency="USD") == "cached 7 USD"

    async def cached(order):
        return f"async cached {order}"

    @breakers.breaker(name, fallback=cached)
    async def quote_async(order):
        raise AssertionError("must not run")

    assert asyncio.run(quote_async(8)) == "async cached 8"


# -- the open-state cache and events ---------------------------------------------------------------


def test_known_open_denies_locally_until_an_event_says_otherwise(admin, name, address2, breakers):
    events = []
    breakers.add_listener(events.append)
    assert breakers.wait_events_live(15)
    trip(admin, name)
    # The trip's own event forgets what the client knew: a deny answered before it arrived is not
    # cached (an event in flight might have been a RESET).
    wait_for(lambda: any(e.breaker == name and e.to_state == "open" for e in events), "the trip's event")
    first = breakers.acquire(name)
    assert (first.permitted, first.source) == (False, "breakerd")
    second = breakers.acquire(name)
    assert (second.permitted, second.source, second.state) == (False, "cache", "open")
    assert second.retry_after <= first.retry_after
    # An operator resets the breaker through another breakerd of the fleet: its event reaches
    # this client, which forgets what it knew and asks breakerd again.
    other = Breakers(address2)
    other.execute("RESET", name)
    wait_for(lambda: breakers.acquire(name).permitted, "the RESET event to clear the cache")
    other.close()


def test_losing_the_event_subscription_forgets_what_was_known(admin, name, address):
    proxy = _Switch()
    proxy.forward_to(address)
    breakers = Breakers(proxy.address)
    events = []
    breakers.add_listener(events.append)
    assert breakers.wait_events_live(15)
    trip(admin, name)
    wait_for(lambda: any(e.breaker == name and e.to_state == "open" for e in events), "the trip's event")
    breakers.acquire(name)
    assert breakers.acquire(name).source == "cache"
    proxy.drop()  # an event (a RESET) might be lost with the subscription: the cache must go
    wait_for(lambda: breakers.acquire(name).source == "breakerd", "the cache to be forgotten")
    breakers.close()
    proxy.close()


def test_cache_off_asks_breakerd_every_time(admin, name, address):
    breakers = Breakers(address, cache_open_state=False)
    trip(admin, name)
    assert [breakers.acquire(name).source for _ in range(3)] == ["breakerd"] * 3
    breakers.close()


def test_half_open_denies_are_not_cached(admin, name, breakers):
    assert breakers.wait_events_live(15)
    set_policy(admin, name, min_calls=1, open_ms=1)
    admin.execute_command("FORCE", name, "OPEN", "TTL", 1)
    wait_for(lambda: admin.execute_command("ACQUIRE", name).split()[2] == "half_open", "a half-open trial")
    assert [breakers.acquire(name).source for _ in range(2)] == ["breakerd"] * 2


def test_listeners_hear_every_transition(admin, name, breakers):
    events = []
    breakers.add_listener(lambda e: events.append(e) if e.breaker == name else None)
    assert breakers.wait_events_live(15)
    trip(admin, name)
    event = wait_for(lambda: next((e for e in events if e.to_state == "open"), None), "the closed->open event")
    assert (event.from_state, event.reason, event.fields["calls"]) == ("closed", "failure_rate", "1")
    admin.execute_command("RESET", name, "REASON", "vendor says fixed")
    reset = wait_for(lambda: next((e for e in events if e.reason == "reset"), None), "the reset event")
    assert reset.to_state == "closed" and reset.fields["why"] == "vendor says fixed"


def test_async_listeners_run_in_their_event_loop(admin, name):
    async def main():
        breakers = AsyncBreakers(admin_address(admin))
        loop = asyncio.get_running_loop()
        heard = asyncio.Event()
        seen = []

        async def listener(event):
            seen.append((event.to_state, asyncio.get_running_loop() is loop))
            if event.breaker == name and event.to_state == "open":
                heard.set()

        breakers.add_listener(listener)
        assert await breakers.wait_events_live_async(15)
        await asyncio.to_thread(trip, admin, name)
        await asyncio.wait_for(heard.wait(), 15)
        await breakers.aclose()
        return seen

    assert ("open", True) in asyncio.run(main())


def test_the_reporter_name_is_set(address, admin, name):
    named = Breakers(address, client_name="checkout-7")
    named.execute("RESET", name, "REASON", "named")
    assert named.client_name == "checkout-7"
    default = Breakers(address)
    assert default.client_name == f"{socket.gethostname()}-{__import__('os').getpid()}"
    default.execute("FORCE", name, "CLOSED", "TTL", 1)
    history = admin.execute_command("HISTORY", name)
    assert any("/checkout-7 why=named" in line for line in history)
    assert any(f"/{default.client_name}" in line for line in history)
    named.close()
    default.close()


# -- passwords and error replies -------------------------------------------------------------------


def test_passwords(auth_address, passwords, name):
    replica, admin_password = passwords
    with pytest.raises(BreakerdError) as caught:
        Breakers(auth_address).acquire(name)
    assert caught.value.code == "NOAUTH"
    with pytest.raises(BreakerdError) as caught:
        Breakers(auth_address, password="wrong").acquire(name)
    assert caught.value.code == "WRONGPASS"
    good = Breakers(auth_address, password=replica)
    assert good.acquire(name).permitted
    with pytest.raises(BreakerdError) as caught:
        good.configure(name, min_calls=3)
    assert caught.value.code == "NOPERM"
    ops = Breakers(f"redis://admin:{admin_password}@{auth_address}")
    assert ops.configure(name, min_calls=3) is True
    assert ops.configure(name, min_calls=3.0) is False  # nothing differs: no CONFIG SET, no history
    good.close()
    ops.close()


def test_report_errors_are_swallowed_and_counted(name, breakers, closed_address):
    breakers.report(Decision(name, True, "closed", permit="9.9.9"), FAILURE, 0.01)  # never issued
    assert breakers.flush(15)
    assert (breakers.reports_sent, breakers.report_errors) == (0, 1)
    gone = Breakers(closed_address)
    gone.report(Decision(name, True, "closed", permit="0.1.1"), SUCCESS)
    assert gone.flush(15)
    assert gone.report_errors == 1
    gone.close()


# -- breakerd unreachable --------------------------------------------------------------------------


def test_unreachable_allow_calls_unprotected(closed_address, name):
    breakers = Breakers(closed_address, on_unreachable="allow")
    assert breakers.breaker(name).call(lambda: "ran") == "ran"
    decision = breakers.acquire(name)
    assert (decision.permitted, decision.source) == (True, "unreachable")
    assert breakers.flush(15)
    assert (breakers.reports_sent, breakers.report_errors) == (0, 0)  # nothing to report to
    breakers.close()


def test_unreachable_deny(closed_address, name):
    breakers = Breakers(closed_address, on_unreachable="deny")
    with pytest.raises(CircuitBreakerError) as caught:
        breakers.breaker(name).call(lambda: "ran")
    assert (caught.value.source, caught.value.retry_after, caught.value.reason) == ("unreachable", 1.0, "unreachable")
    assert breakers.breaker(name, fallback=lambda: "fallback").call(lambda: "ran") == "fallback"
    breakers.close()


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_unreachable_local_breaker_opens_and_recovers(closed_address, name):
    clock = FakeClock()
    breakers = Breakers(closed_address, local_policy=LocalPolicy(failures=2, open_seconds=30), clock=clock)
    breaker = breakers.breaker(name)
    for _ in range(2):
        with pytest.raises(Boom):
            breaker.call(lambda: (_ for _ in ()).throw(Boom()))
    with pytest.raises(CircuitBreakerError) as caught:
        breaker.call(lambda: "ran")
    assert (caught.value.source, caught.value.state, caught.value.retry_after) == ("local", "open", 30)
    clock.now += 30
    trial = breakers.acquire(name)
    assert (trial.permitted, trial.state, trial.source) == (True, "half_open", "local")
    assert breakers.acquire(name).reason == "trials_busy"  # one trial at a time
    breakers.report(trial, SUCCESS)
    assert breaker.call(lambda: "ran") == "ran"
    assert breakers.reports_sent + breakers.report_errors == 0  # local permits never go to breakerd
    breakers.close()


def test_unreachable_async(closed_address, name):
    async def main():
        breakers = AsyncBreakers(closed_address, on_unreachable="deny")
        with pytest.raises(CircuitBreakerError):
            await breakers.breaker(name).call_async(asyncio.sleep, 0)
        allow = AsyncBreakers(closed_address, on_unreachable="allow")
        assert await allow.breaker(name).call_async(asyncio.sleep, 0, "ran") == "ran"
        await breakers.aclose()
        await allow.aclose()

    asyncio.run(main())


def test_back_to_breakerd_after_an_outage_forgets_the_local_breaker(address, name):
    """A listener that does not accept yet, then breakerd: the local breaker's state goes away."""
    proxy = _Switch()
    clock = FakeClock()
    breakers = Breakers(proxy.address, local_policy=LocalPolicy(failures=1, open_seconds=30), clock=clock,
                        cache_open_state=False)
    with pytest.raises(Boom):
        breakers.breaker(name).call(lambda: (_ for _ in ()).throw(Boom()))
    assert breakers.acquire(name).source == "local"  # open locally
    proxy.forward_to(address)
    clock.now += 60  # past the reconnect backoff (the local breaker's own open time is 30 s more)
    decision = breakers.acquire(name)
    assert (decision.permitted, decision.source) == (True, "breakerd")
    proxy.close()
    breakers.close()


class _Switch:
    """A TCP listener that refuses (closes at once) until told to forward to breakerd."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.target = None
        self.closed = False
        self.open_conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def forward_to(self, address):
        host, _, port = address.rpartition(":")
        self.target = (host, int(port))

    def _accept(self):
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if self.target is None:
                conn.close()
                continue
            upstream = socket.create_connection(self.target)
            self.open_conns += [conn, upstream]
            for a, b in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=_pipe, args=(a, b), daemon=True).start()

    def drop(self):
        """Cut every connection made so far, as a breakerd restart or a network blip would."""
        conns, self.open_conns = self.open_conns, []
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.closed = True
        self.sock.close()
        self.drop()


def _pipe(src, dst):
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def admin_address(admin) -> str:
    kwargs = admin.get_connection_kwargs()
    return f"{kwargs['host']}:{kwargs['port']}"


def test_a_forked_child_forgets_the_parents_knowledge_and_reports_on_its_own(admin, name, breakers):
    import os

    events = []
    breakers.add_listener(events.append)
    assert breakers.wait_events_live(15)
    trip(admin, name)
    wait_for(lambda: any(e.breaker == name and e.to_state == "open" for e in events), "the trip's event")
    breakers.acquire(name)
    assert breakers.acquire(name).source == "cache"
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what it saw through the pipe, then leave at once
        try:
            first = breakers.acquire(name).source  # the parent's subscription is not the child's
            admin.execute_command("RESET", name)
            ok = breakers.breaker(name).call(lambda: "ran") == "ran" and breakers.flush(15)
            answer = f"{first} {ok} {breakers.reports_sent} {breakers.client_name}"
        except BaseException as error:  # noqa: BLE001
            answer = f"error {error!r}"
        os.write(write, answer.encode())
        os._exit(0)
    os.close(write)
    answer = os.read(read, 1000).decode()
    os.waitpid(pid, 0)
    assert answer == f"breakerd True 1 {socket.gethostname()}-{pid}"


class _Silent:
    """Accepts connections and never answers: a breakerd that hangs."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                self.conns.append(self.sock.accept()[0])
            except OSError:
                return

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


def test_a_hanging_breakerd_times_out_without_blocking_the_event_loop(name):
    silent = _Silent()

    async def main():
        breakers = AsyncBreakers(silent.address, on_unreachable="deny", timeout=0.3, cache_open_state=False,
                                 reconnect_backoff=600)
        waiting = False
        ran_while_waiting = asyncio.Event()

        async def ticker():
            while True:
                if waiting:
                    ran_while_waiting.set()
                await asyncio.sleep(0.001)

        tick = asyncio.ensure_future(ticker())
        waiting = True
        decision = await breakers.acquire_async(name)
        waiting = False
        tick.cancel()
        assert ran_while_waiting.is_set(), "the event loop was blocked while ACQUIRE waited"
        assert (decision.permitted, decision.source) == (False, "unreachable")
        assert breakers.is_down  # the next calls do not wait again until the backoff passes
        await breakers.aclose()

    try:
        asyncio.run(main())
    finally:
        silent.close()
