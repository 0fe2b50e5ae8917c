"""Breakers and AsyncBreakers: ACQUIRE, the call, REPORT in the background; the open-state cache;
what to do when no breakerd answers. docs/CLIENT.md describes the Swift BreakerClient this mirrors."""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

from ._errors import BreakerdError, CircuitBreakerError
from ._local import LocalBreaker, LocalPolicy

log = logging.getLogger("breakerd")

SUCCESS, FAILURE, IGNORE = "SUCCESS", "FAILURE", "IGNORE"
_UNREACHABLE_POLICIES = ("local", "allow", "deny")
_EVENTS_CHANNEL = "breakers"
# on_unreachable="deny" denies for as long as breakerd's own --degraded deny does.
_DENY_RETRY_AFTER_UNREACHABLE = 1.0


@dataclass(frozen=True)
class Decision:
    """What ACQUIRE (or the client on its own) decided for one call.

    `reason` on a deny: the DENY reply's fourth word when breakerd sends one (`open`,
    `forced_open`, `trials_busy`, `bulkhead`, `degraded`, ...); when it sends none (breakerd today),
    `open` for an open breaker and `trials_busy` for a half-open one whose trial places are taken.
    A forced-open breaker then reads `open` too: telling them apart would cost a STATE round trip.
    `source`: "breakerd", "cache", "local", "unreachable"; `degraded`: breakerd answered from its
    own fallback because Redis could not (the reply ended with `degraded`)."""

    breaker: str
    permitted: bool
    state: str
    permit: str | None = None
    retry_after: float = 0.0
    reason: str | None = None
    source: str = "breakerd"
    degraded: bool = False

    def error(self) -> CircuitBreakerError:
        return CircuitBreakerError(self.breaker, self.state, self.retry_after, self.reason, self.source)


@dataclass(frozen=True)
class BreakerEvent:
    """One transition line from SUBSCRIBE breakers, e.g.
    `payments closed->open gen=1 at=1795382214230 reason=failure_rate failure_rate=1 ...`.
    Words this version does not know are kept in `fields`; `line` is the original."""

    breaker: str
    from_state: str
    to_state: str
    generation: int | None
    at_ms: int | None
    reason: str | None
    fields: dict[str, str]
    line: str

    @classmethod
    def parse(cls, line: str) -> "BreakerEvent | None":
        words = line.split(" ")
        if len(words) < 2 or "->" not in words[1]:
            return None
        from_state, _, to_state = words[1].partition("->")
        fields: dict[str, str] = {}
        rest = words[2:]
        for i, word in enumerate(rest):
            key, eq, value = word.partition("=")
            if not eq:
                continue
            if key == "why":  # the operator's reason keeps its spaces and ends the line
                fields[key] = " ".join([value, *rest[i + 1 :]])
                break
            fields[key] = value

        def number(key: str) -> int | None:
            try:
                return int(fields[key])
            except (KeyError, ValueError):
                return None

        return cls(words[0], from_state, to_state, number("gen"), number("at"), fields.get("reason"), fields, line)


def parse_acquire(breaker: str, reply: Any) -> Decision:
    """`PERMIT <permit> <state> [degraded]` or `DENY <state> <retry_after_ms> [<reason>] [...]`;
    words a later breakerd adds are ignored (docs/PROTOCOL.md)."""
    text = reply.decode() if isinstance(reply, bytes) else str(reply)
    words = text.split()
    if len(words) >= 3 and words[0] == "PERMIT":
        return Decision(breaker, True, words[2], permit=words[1], degraded="degraded" in words[3:])
    if len(words) >= 3 and words[0] == "DENY":
        try:
            retry_after_ms = int(words[2])
        except ValueError:
            raise BreakerdError(f"unexpected ACQUIRE reply for '{breaker}': {text!r}") from None
        extra = words[3:]
        degraded = "degraded" in extra
        if extra:
            reason = extra[0]
        elif words[1] == "half_open":
            reason = "trials_busy"
        else:
            reason = words[1]
        return Decision(breaker, False, words[1], retry_after=retry_after_ms / 1000, reason=reason, degraded=degraded)
    raise BreakerdError(f"unexpected ACQUIRE reply for '{breaker}': {text!r}")


def _default_client_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _error_from_reply(exc: Exception) -> BreakerdError:
    text = str(exc)
    # redis-py strips "ERR " from plain errors and maps NOAUTH/WRONGPASS/NOPERM to classes.
    if isinstance(exc, redis.AuthenticationError):
        code = "WRONGPASS" if "invalid" in text.lower() or "wrong" in text.lower() else "NOAUTH"
    elif isinstance(exc, redis.exceptions.NoPermissionError):
        code = "NOPERM"
    else:
        first = text.split(" ", 1)[0]
        code = first if first.isupper() and first.isalpha() else "ERR"
    return BreakerdError(f"breakerd refused: {text}", code)


def _is_refusal(exc: BaseException) -> bool:
    # AuthenticationError is a ConnectionError in redis-py, but a wrong password is a reply, not an
    # outage: it must not make the client quietly run without breakers.
    return isinstance(exc, (redis.AuthenticationError, redis.ResponseError))


def _is_unreachable(exc: BaseException) -> bool:
    return isinstance(exc, (redis.ConnectionError, redis.TimeoutError, OSError, asyncio.TimeoutError)) and not _is_refusal(exc)


@dataclass
class _CachedDeny:
    until: float  # monotonic
    decision: Decision


@dataclass
class _Stats:
    reports_sent: int = 0
    report_errors: int = 0
    reports_dropped: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, name: str, n: int = 1) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + n)


class Breakers:
    """A connection to breakerd for this process: `breakers.breaker(name)` protects calls.

    `url` is `redis://[user:password@]host:port` or `host:port`. `on_unreachable` says what a call
    does when breakerd cannot be reached (refused connection, timeout): "local" runs an in-process
    breaker per name (`local_policy`), "allow" calls unprotected and reports nothing, "deny" denies
    with a retry-after of 1 s. Error replies (a wrong password, a bad name) are raised as
    BreakerdError instead: they are mistakes, not outages.

    Works from threads and from asyncio alike: the async forms use redis.asyncio for ACQUIRE;
    reports and the event subscription run on background threads and never block the caller."""

    def __init__(
        self,
        url: str = "redis://127.0.0.1:7420",
        *,
        password: str | None = None,
        username: str | None = None,
        client_name: str | None = None,
        on_unreachable: str = "local",
        timeout: float = 0.5,
        cache_open_state: bool = True,
        local_policy: LocalPolicy | None = None,
        reconnect_backoff: float = 0.1,
        max_reconnect_backoff: float = 5.0,
        max_pending_reports: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ):
        if on_unreachable not in _UNREACHABLE_POLICIES:
            raise ValueError(f"on_unreachable must be one of {', '.join(_UNREACHABLE_POLICIES)}, got {on_unreachable!r}")
        if timeout <= 0:
            raise ValueError(f"timeout must be a number of seconds above 0, got {timeout!r}")
        if "://" not in url:
            url = f"redis://{url}"
        self.url = url
        self._named = client_name is not None
        self.client_name = client_name or _default_client_name()
        self.on_unreachable = on_unreachable
        self.timeout = timeout
        self.cache_open_state = cache_open_state
        self.local_policy = local_policy or LocalPolicy()
        self._clock = clock
        self._redis_kwargs = dict(
            password=password,
            username=username,
            client_name=self.client_name,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            decode_responses=True,
        )
        # Never retry inside redis-py: a second ACQUIRE could take a half-open trial place that
        # nobody reports, and a retry with backoff would hold the caller far past `timeout`.
        self._sync = redis.Redis.from_url(url, retry=Retry(NoBackoff(), 0), **self._redis_kwargs)
        self._async: tuple[asyncio.AbstractEventLoop, redis.asyncio.Redis] | None = None
        self._lock = threading.RLock()
        self._stats = _Stats()

        self._down_until = 0.0
        self._backoff = reconnect_backoff
        self._min_backoff = reconnect_backoff
        self._max_backoff = max_reconnect_backoff
        self._was_down = False
        self._local: dict[str, LocalBreaker] = {}
        self._local_policies: dict[str, LocalPolicy] = {}

        self._cache: dict[str, _CachedDeny] = {}
        self._event_seq = 0  # bumped by every event and every loss of the subscription
        self._events_live = threading.Event()
        self._listeners: list[tuple[Callable[[BreakerEvent], Any], asyncio.AbstractEventLoop | None]] = []
        self._events_thread: threading.Thread | None = None
        self._reports: queue.Queue = queue.Queue(maxsize=max_pending_reports)
        self._reports_pending = 0
        self._reports_idle = threading.Condition(self._lock)
        self._reports_thread: threading.Thread | None = None
        self._closed = threading.Event()
        self._pid = os.getpid()

    def _check_fork(self) -> None:
        """In a forked child (gunicorn's preload, multiprocessing) the parent's threads are gone:
        what they knew must go too, or a cached deny would outlive the events that clear it."""
        if os.getpid() == self._pid:
            return
        with self._lock:
            if os.getpid() == self._pid:
                return
            self._pid = os.getpid()
            if not self._named:
                self.client_name = _default_client_name()
                self._redis_kwargs["client_name"] = self.client_name
            self._sync = redis.Redis.from_url(self.url, retry=Retry(NoBackoff(), 0), **self._redis_kwargs)
            self._async = None
            self._events_thread = None
            self._reports_thread = None
            self._events_live = threading.Event()
            self._cache.clear()
            self._event_seq += 1
            self._reports = queue.Queue(maxsize=self._reports.maxsize)
            self._reports_pending = 0

    # -- public API -------------------------------------------------------------------------------

    def breaker(
        self,
        name: str,
        *,
        fallback: Callable[..., Any] | None = None,
        exclude: tuple = (),
        is_failure: Callable[[Any], bool] | None = None,
    ) -> "Breaker":
        """A breaker for calls to one dependency; see Breaker."""
        from ._breaker import Breaker

        return Breaker(self, name, fallback=fallback, exclude=exclude, is_failure=is_failure)

    def add_listener(self, listener: Callable[[BreakerEvent], Any]) -> None:
        """Call `listener(event)` for every transition of every breaker (SUBSCRIBE breakers).
        Listeners run on the subscription's thread; a listener that raises is logged and kept."""
        with self._lock:
            self._listeners.append((listener, None))
        self._start_events()

    def remove_listener(self, listener: Callable[[BreakerEvent], Any]) -> None:
        with self._lock:
            self._listeners = [(fn, loop) for fn, loop in self._listeners if fn is not listener]

    def set_local_policy(self, name: str, policy: LocalPolicy) -> None:
        """The local breaker's policy for one name, instead of `local_policy`."""
        with self._lock:
            self._local_policies[name] = policy
            self._local.pop(name, None)

    @property
    def events_live(self) -> bool:
        """Whether the event subscription is up (the open-state cache is used only while it is)."""
        return self._events_live.is_set()

    def wait_events_live(self, timeout: float | None = None) -> bool:
        """Start the event subscription if needed and wait until it is up."""
        self._start_events()
        return self._events_live.wait(timeout)

    @property
    def reports_sent(self) -> int:
        """REPORTs breakerd acknowledged."""
        return self._stats.reports_sent

    @property
    def report_errors(self) -> int:
        """REPORTs that failed (breakerd unreachable or an error reply): swallowed, counted here."""
        return self._stats.report_errors

    @property
    def reports_dropped(self) -> int:
        """REPORTs dropped without sending because `max_pending_reports` were already waiting."""
        return self._stats.reports_dropped

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every report queued so far has been sent (or has failed)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._reports_idle:
            while self._reports_pending:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._reports_idle.wait(left)
        return True

    def close(self, timeout: float = 2.0) -> None:
        """Send the reports still queued (up to `timeout`), stop the background threads, close connections."""
        self.flush(timeout)
        self._closed.set()
        for thread in (self._reports_thread, self._events_thread):
            if thread is not None:
                thread.join(timeout)
        self._sync.close()

    def __enter__(self) -> "Breakers":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def acquire(self, name: str) -> Decision:
        """Decide one call: the open-state cache, then ACQUIRE, or the on_unreachable choice."""
        decision, seq = self._before_acquire(name)
        if decision is not None:
            return decision
        try:
            reply = self._sync.execute_command("ACQUIRE", name)
        except Exception as exc:  # noqa: BLE001 - sorted below
            return self._acquire_failed(name, exc)
        return self._after_acquire(name, reply, seq)

    async def acquire_async(self, name: str) -> Decision:
        """acquire() for asyncio: ACQUIRE through redis.asyncio, never blocking the event loop."""
        decision, seq = self._before_acquire(name)
        if decision is not None:
            return decision
        try:
            reply = await self._async_client().execute_command("ACQUIRE", name)
        except Exception as exc:  # noqa: BLE001 - sorted below
            return self._acquire_failed(name, exc)
        return self._after_acquire(name, reply, seq)

    def report(self, decision: Decision, outcome: str, latency: float | None = None) -> None:
        """Record the outcome of a permitted call (`latency` in seconds): in the background for
        breakerd's permits, at once for the local breaker's. Never raises, never blocks."""
        if outcome not in (SUCCESS, FAILURE, IGNORE):
            raise ValueError(f"outcome must be SUCCESS, FAILURE or IGNORE, got {outcome!r}")
        if not decision.permitted:
            return
        if decision.source == "local":
            with self._lock:
                local = self._local.get(decision.breaker)
            if local is not None:
                local.record(outcome)
            return
        if decision.source != "breakerd" or decision.permit is None:
            return  # "allow" while unreachable: nobody to report to
        self._check_fork()
        if self._closed.is_set():
            self._stats.add("reports_dropped")
            return
        args = ["REPORT", decision.breaker, decision.permit, outcome]
        if latency is not None:
            args += ["LATENCY", str(max(0, round(latency * 1000)))]
        self._start_reports()
        with self._lock:
            self._reports_pending += 1
        try:
            self._reports.put_nowait(args)
        except queue.Full:
            self._stats.add("reports_dropped")
            self._report_done(1)

    def state(self, name: str) -> dict[str, str]:
        """STATE: `{"name": ..., "state": ..., "mode": ..., "calls": ..., ...}` (values as text)."""
        return _parse_state(self._command("STATE", name))

    def configure(self, name: str, reason: str | None = None, **policy: Any) -> bool:
        """CONFIG SET the given policy keys (docs/ENGINE.md) on one breaker, only those whose value
        differs from CONFIG GET, so replicas starting with the same policy add no history.
        Returns whether anything was set. Needs the admin user when breakerd has passwords."""
        current = _parse_config(self._command("CONFIG", "GET", name))
        changes: list[str] = []
        for key, value in policy.items():
            text = _policy_text(value)
            if current.get(key) is None or not _same_value(current[key], text):
                changes += [key, text]
        if not changes:
            return False
        if reason:
            changes += ["REASON", reason]
        self._command("CONFIG", "SET", name, *changes)
        return True

    def execute(self, *args: Any) -> Any:
        """Any other breakerd command (FORCE, RESET, HISTORY, ...); error replies raise BreakerdError."""
        return self._command(*args)

    # -- acquire internals ------------------------------------------------------------------------

    def _before_acquire(self, name: str) -> tuple[Decision | None, int]:
        self._check_fork()
        self._start_events()
        now = self._clock()
        with self._lock:
            seq = self._event_seq
            cached = self._cache.get(name)
            if cached is not None:
                if now < cached.until and self._events_live.is_set():
                    d = cached.decision
                    return Decision(name, False, d.state, retry_after=cached.until - now, reason=d.reason, source="cache"), seq
                del self._cache[name]
            if now < self._down_until:
                return self._unreachable(name, now), seq
        return None, seq

    def _after_acquire(self, name: str, reply: Any, seq: int) -> Decision:
        decision = parse_acquire(name, reply)
        now = self._clock()
        with self._lock:
            if self._was_down:  # breakerd answers again: the local breakers' knowledge is forgotten
                self._was_down = False
                self._local.clear()
            self._backoff = self._min_backoff
            # Cache an open breaker's deny only if no event (a RESET, say) arrived while ACQUIRE was
            # in flight and the subscription has been live all along; half-open denies are a trial
            # lease's length, not the breaker's, so they are not cached.
            if (
                self.cache_open_state
                and not decision.permitted
                and decision.state == "open"
                and not decision.degraded
                and decision.retry_after > 0
                and self._events_live.is_set()
                and seq == self._event_seq
            ):
                self._cache[name] = _CachedDeny(now + decision.retry_after, decision)
        return decision

    def _acquire_failed(self, name: str, exc: Exception) -> Decision:
        if _is_refusal(exc):
            raise _error_from_reply(exc) from exc
        if not _is_unreachable(exc):
            raise exc
        with self._lock:
            now = self._mark_down(exc)
            return self._unreachable(name, now)

    def _mark_down(self, exc: BaseException) -> float:
        now = self._clock()
        with self._lock:
            self._down_until = now + self._backoff
            self._backoff = min(self._backoff * 2, self._max_backoff)
            self._was_down = True
        log.debug("breakerd unreachable (%s); %s for %.2fs", exc, self.on_unreachable, self._down_until - now)
        return now

    @property
    def is_down(self) -> bool:
        """Whether breakerd failed to answer lately and is skipped until a backoff passes."""
        return self._clock() < self._down_until

    def _unreachable(self, name: str, now: float) -> Decision:
        # Called with the lock held.
        self._was_down = True
        if self.on_unreachable == "allow":
            return Decision(name, True, "closed", source="unreachable")
        if self.on_unreachable == "deny":
            return Decision(
                name, False, "open", retry_after=_DENY_RETRY_AFTER_UNREACHABLE, reason="unreachable", source="unreachable"
            )
        local = self._local.get(name)
        if local is None:
            policy = self._local_policies.get(name, self.local_policy)
            local = self._local[name] = LocalBreaker(policy, self._clock)
        return local.acquire(name)

    def _async_client(self) -> redis.asyncio.Redis:
        # A redis.asyncio client belongs to the loop it first ran in: a new loop gets its own.
        loop = asyncio.get_running_loop()
        current = self._async
        if current is None or current[0] is not loop:
            client = redis.asyncio.Redis.from_url(self.url, retry=AsyncRetry(NoBackoff(), 0), **self._redis_kwargs)
            self._async = current = (loop, client)
        return current[1]

    def _command(self, *args: Any) -> Any:
        self._check_fork()
        try:
            return self._sync.execute_command(*args)
        except Exception as exc:  # noqa: BLE001
            if _is_refusal(exc):
                raise _error_from_reply(exc) from exc
            if _is_unreachable(exc):
                self._mark_down(exc)
            raise

    # -- reports ----------------------------------------------------------------------------------

    def _start_reports(self) -> None:
        if self._reports_thread is not None:
            return
        with self._lock:
            if self._reports_thread is None:
                self._reports_thread = threading.Thread(target=self._send_reports, name="breakerd-reports", daemon=True)
                self._reports_thread.start()

    def _report_done(self, n: int) -> None:
        with self._reports_idle:
            self._reports_pending -= n
            if self._reports_pending == 0:
                self._reports_idle.notify_all()

    def _send_reports(self) -> None:
        client = redis.Redis.from_url(self.url, retry=Retry(NoBackoff(), 0), **self._redis_kwargs)
        try:
            while True:
                try:
                    batch = [self._reports.get(timeout=0.1)]
                except queue.Empty:
                    if self._closed.is_set():
                        return
                    continue
                while len(batch) < 128:  # pipeline whatever else is waiting: one round trip
                    try:
                        batch.append(self._reports.get_nowait())
                    except queue.Empty:
                        break
                sent = 0
                try:
                    pipe = client.pipeline(transaction=False)
                    for args in batch:
                        pipe.execute_command(*args)
                    for result in pipe.execute(raise_on_error=False):
                        if isinstance(result, Exception):
                            log.debug("report failed: %s", result)
                        else:
                            sent += 1
                except Exception as exc:  # noqa: BLE001 - a lost report never fails anything
                    log.debug("reports failed: %s", exc)
                self._stats.add("reports_sent", sent)
                self._stats.add("report_errors", len(batch) - sent)
                self._report_done(len(batch))
        finally:
            client.close()

    # -- events -----------------------------------------------------------------------------------

    def _start_events(self) -> None:
        if self._events_thread is not None or not (self.cache_open_state or self._listeners):
            return
        with self._lock:
            if self._events_thread is None and not self._closed.is_set():
                self._events_thread = threading.Thread(target=self._follow_events, name="breakerd-events", daemon=True)
                self._events_thread.start()

    def _lost_events(self) -> None:
        # An event may have been missed: forget everything the cache knew.
        with self._lock:
            self._events_live.clear()
            self._event_seq += 1
            self._cache.clear()

    def _follow_events(self) -> None:
        backoff = self._min_backoff
        kwargs = dict(self._redis_kwargs, socket_timeout=None)
        while not self._closed.is_set():
            client = redis.Redis.from_url(self.url, retry=Retry(NoBackoff(), 0), health_check_interval=5, **kwargs)
            pubsub = client.pubsub()
            try:
                pubsub.subscribe(_EVENTS_CHANNEL)
                while not self._closed.is_set():
                    message = pubsub.get_message(timeout=0.2)
                    if message is None:
                        continue
                    if message["type"] == "subscribe":
                        with self._lock:
                            self._event_seq += 1
                            self._events_live.set()
                        backoff = self._min_backoff
                    elif message["type"] == "message":
                        self._on_event(message["data"])
            except Exception as exc:  # noqa: BLE001 - the subscription comes back by itself
                log.debug("event subscription lost: %s", exc)
            finally:
                self._lost_events()
                try:
                    pubsub.close()
                    client.close()
                except Exception:  # noqa: BLE001
                    pass
            if self._closed.wait(backoff):
                return
            backoff = min(backoff * 2, self._max_backoff)

    def _on_event(self, data: Any) -> None:
        line = data.decode() if isinstance(data, bytes) else str(data)
        event = BreakerEvent.parse(line)
        if event is None:
            return
        with self._lock:
            self._event_seq += 1
            self._cache.pop(event.breaker, None)
            listeners = list(self._listeners)
        for listener, loop in listeners:
            self._dispatch(listener, loop, event)

    def _dispatch(self, listener: Callable[[BreakerEvent], Any], loop: asyncio.AbstractEventLoop | None, event: BreakerEvent) -> None:
        def run() -> None:
            try:
                result = listener(event)
                if asyncio.iscoroutine(result):
                    task = asyncio.ensure_future(result)
                    task.add_done_callback(_log_listener_failure)
            except Exception:  # noqa: BLE001
                log.exception("breakerd listener %r failed", listener)

        if loop is None:
            run()
        elif not loop.is_closed():
            loop.call_soon_threadsafe(run)


def _log_listener_failure(task: "asyncio.Future[Any]") -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("breakerd listener failed", exc_info=task.exception())


class AsyncBreakers(Breakers):
    """Breakers for asyncio services: the same API, with listeners run in the event loop they were
    added from (coroutine listeners are awaited there), and `await aclose()`."""

    def add_listener(self, listener: Callable[[BreakerEvent], Any]) -> None:
        """Call `listener(event)` (a function or a coroutine function) in the running event loop for
        every transition; without a running loop it runs on the subscription's thread."""
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        with self._lock:
            self._listeners.append((listener, loop))
        self._start_events()

    async def wait_events_live_async(self, timeout: float | None = None) -> bool:
        return await asyncio.to_thread(self.wait_events_live, timeout)

    async def flush_async(self, timeout: float | None = None) -> bool:
        return await asyncio.to_thread(self.flush, timeout)

    async def aclose(self, timeout: float = 2.0) -> None:
        """close() without blocking the event loop; also closes the loop's redis.asyncio client."""
        current, self._async = self._async, None
        await asyncio.to_thread(self.close, timeout)
        if current is not None and current[0] is asyncio.get_running_loop():
            await current[1].aclose()

    async def __aenter__(self) -> "AsyncBreakers":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()


def _parse_state(reply: Any) -> dict[str, str]:
    words = str(reply).split()
    result = {"name": words[0], "state": words[1]} if len(words) >= 2 else {}
    for word in words[2:]:
        key, eq, value = word.partition("=")
        if eq:
            result[key] = value
    return result


def _parse_config(reply: Any) -> dict[str, str]:
    result: dict[str, str] = {}
    for word in str(reply).split():
        key, eq, value = word.partition("=")
        if eq:
            result[key] = value
    return result


def _policy_text(value: Any) -> str:
    if isinstance(value, bool):
        raise ValueError("policy values are numbers")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _same_value(a: str, b: str) -> bool:
    try:
        return float(a) == float(b)
    except ValueError:
        return a == b
