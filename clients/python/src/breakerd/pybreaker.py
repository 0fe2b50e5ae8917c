"""A drop-in for pybreaker's public names, backed by breakerd: `import breakerd.pybreaker as pybreaker`.

    breaker = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=60, name="payments")

The keywords become the breaker's policy in breakerd (CONFIG SET, only the keys that differ, at the
first call), so every replica shares one breaker. Where a fleet-wide breaker must differ from
pybreaker's in-process one, the package README says so ("pybreaker"). Which breakerd: configure()
or the breakers= keyword, else BREAKERD_URL, else redis://127.0.0.1:7420.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import threading
import time
from typing import Any, Callable, Iterable, Iterator, Sequence

from ._client import FAILURE, IGNORE, SUCCESS, BreakerEvent, Breakers
from ._errors import BreakerdError, CircuitBreakerError
from ._local import LocalPolicy

__all__ = (
    "CircuitBreaker",
    "CircuitBreakerListener",
    "CircuitBreakerError",
    "CircuitBreakerState",
    "STATE_OPEN",
    "STATE_CLOSED",
    "STATE_HALF_OPEN",
    "configure",
    "policy_for",
)

STATE_OPEN = "open"
STATE_CLOSED = "closed"
STATE_HALF_OPEN = "half-open"  # pybreaker's spelling; breakerd says half_open

log = logging.getLogger("breakerd.pybreaker")
_default: Breakers | None = None
_default_lock = threading.Lock()


def configure(breakers: Breakers) -> None:
    """The breakerd every CircuitBreaker made without breakers= uses."""
    global _default
    with _default_lock:
        _default = breakers


def _default_breakers() -> Breakers:
    global _default
    with _default_lock:
        if _default is None:
            _default = Breakers(os.environ.get("BREAKERD_URL", "redis://127.0.0.1:7420"))
        return _default


def _pybreaker_state(state: str) -> str:
    return STATE_HALF_OPEN if state == "half_open" else state


def policy_for(fail_max: int, reset_timeout: float, success_threshold: int) -> dict[str, Any]:
    """pybreaker's keywords as breakerd policy keys (docs/ENGINE.md).

    fail_max failures trip it: min_calls=fail_max with failure_rate=1 (every call in the window
    failed; pybreaker counts consecutive failures, breakerd a rolling window of window_ms). The
    open time is reset_timeout without backoff, as pybreaker has none; one trial at a time, and
    success_threshold successful trials close it."""
    if not isinstance(fail_max, int) or fail_max < 1:
        raise ValueError(f"fail_max must be a whole number >= 1, got {fail_max!r}")
    if not isinstance(success_threshold, int) or success_threshold < 1:
        raise ValueError(f"success_threshold must be a whole number >= 1, got {success_threshold!r}")
    open_ms = round(reset_timeout * 1000)
    if not 1 <= open_ms <= 86_400_000:
        raise ValueError(f"reset_timeout must be between 0.001 and 86400 seconds, got {reset_timeout!r}")
    return {
        "min_calls": fail_max,
        "failure_rate": 1,
        "open_ms": open_ms,
        "open_backoff": 1,
        "max_open_ms": open_ms,
        "half_open_permits": 1,
        "success_threshold": success_threshold,
    }


class CircuitBreakerState:
    """What listeners' state_change receives: `name` is STATE_CLOSED, STATE_OPEN or STATE_HALF_OPEN."""

    def __init__(self, cb: "CircuitBreaker", name: str):
        self._breaker = cb
        self.name = name

    def __repr__(self) -> str:
        return f"<CircuitBreakerState {self.name}>"


class CircuitBreakerListener:
    """Subclass and override what you need, as with pybreaker. state_change hears breakerd's
    transitions of this breaker, caused by any replica, on the event subscription's thread."""

    def before_call(self, cb: "CircuitBreaker", func: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        pass

    def failure(self, cb: "CircuitBreaker", exc: BaseException) -> None:
        pass

    def success(self, cb: "CircuitBreaker") -> None:
        pass

    def state_change(self, cb: "CircuitBreaker", old_state: CircuitBreakerState | None, new_state: CircuitBreakerState) -> None:
        pass


class CircuitBreaker:
    """pybreaker.CircuitBreaker's constructor and public methods; `name` is required, since it is
    the breaker every replica shares."""

    def __init__(
        self,
        fail_max: int = 5,
        reset_timeout: float = 60,
        success_threshold: int = 1,
        exclude: Iterable[Any] | None = None,
        listeners: Sequence[CircuitBreakerListener] | None = None,
        state_storage: Any = None,
        name: str | None = None,
        throw_new_error_on_trip: bool = True,
        *,
        breakers: Breakers | None = None,
    ):
        if state_storage is not None:
            raise TypeError("state_storage: breakerd keeps the breaker's state; drop this argument")
        if not name:
            raise TypeError("name is required: it is the breaker every replica shares in breakerd")
        self._policy = policy_for(fail_max, reset_timeout, success_threshold)  # validates them
        self._fail_max, self._reset_timeout, self._success_threshold = fail_max, reset_timeout, success_threshold
        self._name = name
        self._breakers = breakers
        self._excluded_exceptions = list(exclude or [])
        self._listeners: list[CircuitBreakerListener] = []
        self._lock = threading.RLock()
        self._policy_applied = False
        self._subscribed = False
        # Accepted for compatibility: a call's outcome reaches breakerd in the background, so the
        # call that trips the breaker raises its own error either way (README, "pybreaker").
        self._throw_new_error_on_trip = throw_new_error_on_trip
        for listener in listeners or []:
            self.add_listener(listener)
        self._local_policy_on: Breakers | None = None

    def _set_local_policy(self) -> None:
        # While breakerd cannot be reached (on_unreachable="local"), pybreaker's own rule applies.
        breakers = self.breakers
        if self._local_policy_on is not breakers:
            breakers.set_local_policy(self._name, LocalPolicy(self._fail_max, float(self._reset_timeout)))
            self._local_policy_on = breakers

    # -- configuration ----------------------------------------------------------------------------

    @property
    def breakers(self) -> Breakers:
        return self._breakers or _default_breakers()

    @property
    def name(self) -> str:
        return self._name

    @property
    def fail_max(self) -> int:
        return self._fail_max

    @fail_max.setter
    def fail_max(self, number: int) -> None:
        self._set_policy(fail_max=number)

    @property
    def reset_timeout(self) -> float:
        return self._reset_timeout

    @reset_timeout.setter
    def reset_timeout(self, timeout: float) -> None:
        self._set_policy(reset_timeout=timeout)

    @property
    def success_threshold(self) -> int:
        return self._success_threshold

    @success_threshold.setter
    def success_threshold(self, threshold: int) -> None:
        self._set_policy(success_threshold=threshold)

    def _set_policy(self, **changes: Any) -> None:
        values = dict(fail_max=self._fail_max, reset_timeout=self._reset_timeout, success_threshold=self._success_threshold)
        values.update(changes)
        policy = policy_for(**values)
        with self._lock:
            self._fail_max, self._reset_timeout, self._success_threshold = (
                values["fail_max"], values["reset_timeout"], values["success_threshold"])
            self._policy = policy
            self._policy_applied = False
            self._local_policy_on = None

    def _apply_policy(self) -> None:
        # Tried at each call until it has worked once: breakerd may be down at start.
        self._set_local_policy()
        if self._policy_applied or self.breakers.is_down:
            return  # while breakerd is down the call goes by on_unreachable; no wait on CONFIG
        with self._lock:
            if self._policy_applied:
                return
            try:
                self.breakers.configure(self._name, reason="pybreaker policy", **self._policy)
                self._policy_applied = True
            except BreakerdError as error:
                # NOPERM: replicas without the admin password run with the policy an operator set.
                log.warning("breaker %r: policy not set in breakerd (%s); using the breaker's current policy", self._name, error)
                self._policy_applied = True
            except Exception as error:  # noqa: BLE001 - unreachable: try again at the next call
                log.debug("breaker %r: policy not set yet: %s", self._name, error)

    # -- exclusions -------------------------------------------------------------------------------

    @property
    def excluded_exceptions(self) -> tuple[Any, ...]:
        return tuple(self._excluded_exceptions)

    def add_excluded_exception(self, exception: Any) -> None:
        with self._lock:
            self._excluded_exceptions.append(exception)

    def add_excluded_exceptions(self, *exceptions: Any) -> None:
        for exception in exceptions:
            self.add_excluded_exception(exception)

    def remove_excluded_exception(self, exception: Any) -> None:
        with self._lock:
            self._excluded_exceptions.remove(exception)

    def is_system_error(self, exception: BaseException) -> bool:
        """False for an excluded exception (a type it is an instance of, or a callable that says so)."""
        for exclusion in self._excluded_exceptions:
            if isinstance(exclusion, type):
                if isinstance(exception, exclusion):
                    return False
            elif callable(exclusion) and exclusion(exception):
                return False
        return True

    # -- listeners --------------------------------------------------------------------------------

    @property
    def listeners(self) -> tuple[CircuitBreakerListener, ...]:
        return tuple(self._listeners)

    def add_listener(self, listener: CircuitBreakerListener) -> None:
        with self._lock:
            self._listeners.append(listener)
            if not self._subscribed:
                self._subscribed = True
                self.breakers.add_listener(self._on_event)

    def add_listeners(self, *listeners: CircuitBreakerListener) -> None:
        for listener in listeners:
            self.add_listener(listener)

    def remove_listener(self, listener: CircuitBreakerListener) -> None:
        with self._lock:
            self._listeners.remove(listener)

    def _on_event(self, event: BreakerEvent) -> None:
        if event.breaker != self._name or event.from_state == event.to_state:
            return
        old = CircuitBreakerState(self, _pybreaker_state(event.from_state))
        new = CircuitBreakerState(self, _pybreaker_state(event.to_state))
        for listener in self.listeners:
            try:
                listener.state_change(self, old, new)
            except Exception:  # noqa: BLE001
                log.exception("pybreaker listener %r failed", listener)

    # -- state ------------------------------------------------------------------------------------

    @property
    def current_state(self) -> str:
        """'closed', 'open' or 'half-open', as breakerd has it now (one STATE round trip)."""
        return _pybreaker_state(self.breakers.state(self._name)["state"])

    @property
    def state(self) -> CircuitBreakerState:
        return CircuitBreakerState(self, self.current_state)

    @property
    def fail_counter(self) -> int:
        """Failures in breakerd's window (pybreaker: consecutive failures)."""
        return int(self.breakers.state(self._name).get("failures", 0))

    def open(self) -> bool:
        """Open the breaker fleet-wide for reset_timeout, after which trials run (FORCE OPEN with a
        TTL; needs the admin user when breakerd has passwords)."""
        self.breakers.execute("FORCE", self._name, "OPEN", "TTL", str(self._policy["open_ms"]), "REASON", "pybreaker open()")
        return self._throw_new_error_on_trip

    def close(self) -> None:
        """Close the breaker fleet-wide with an empty window (RESET; admin)."""
        self.breakers.execute("RESET", self._name, "REASON", "pybreaker close()")

    def half_open(self) -> None:
        raise NotImplementedError("breakerd moves a breaker to half-open itself when its open time ends; use open() or close()")

    # -- calls ------------------------------------------------------------------------------------

    def _finish(self, decision: Any, started: float, error: BaseException | None) -> None:
        latency = time.monotonic() - started
        if error is not None and not isinstance(error, Exception):
            self.breakers.report(decision, IGNORE, latency)  # the caller's cancellation or exit
        elif error is not None and self.is_system_error(error):
            self.breakers.report(decision, FAILURE, latency)
            for listener in self.listeners:
                listener.failure(self, error)
        else:
            # pybreaker counts an excluded exception as a success.
            self.breakers.report(decision, SUCCESS, latency)
            for listener in self.listeners:
                listener.success(self)

    def call(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call `func(*args, **kwargs)` through the breaker; CircuitBreakerError when denied."""
        self._apply_policy()
        decision = self.breakers.acquire(self._name)
        if not decision.permitted:
            raise decision.error()
        for listener in self.listeners:
            listener.before_call(self, func, *args, **kwargs)
        started = time.monotonic()
        try:
            result = func(*args, **kwargs)
        except BaseException as error:
            self._finish(decision, started, error)
            raise
        self._finish(decision, started, None)
        return result

    async def call_async(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Await `func(*args, **kwargs)` through the breaker (asyncio, not pybreaker's Tornado)."""
        import asyncio

        self._set_local_policy()
        if not self._policy_applied and not self.breakers.is_down:
            await asyncio.to_thread(self._apply_policy)
        decision = await self.breakers.acquire_async(self._name)
        if not decision.permitted:
            raise decision.error()
        for listener in self.listeners:
            listener.before_call(self, func, *args, **kwargs)
        started = time.monotonic()
        try:
            result = await func(*args, **kwargs)
        except BaseException as error:
            self._finish(decision, started, error)
            raise
        self._finish(decision, started, None)
        return result

    @contextlib.contextmanager
    def calling(self) -> Iterator[None]:
        """`with breaker.calling():` runs the block through the breaker."""
        self._apply_policy()
        decision = self.breakers.acquire(self._name)
        if not decision.permitted:
            raise decision.error()
        started = time.monotonic()
        try:
            yield
        except BaseException as error:
            self._finish(decision, started, error)
            raise
        self._finish(decision, started, None)

    def __call__(self, *call_args: Any, **call_kwargs: Any) -> Any:
        """The decorator, with or without parentheses; `async def` functions are awaited inside."""

        def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
            import functools

            if inspect.iscoroutinefunction(func):

                @functools.wraps(func)
                async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                    return await self.call_async(func, *args, **kwargs)

                return async_wrapper

            @functools.wraps(func)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                return self.call(func, *args, **kwargs)

            return wrapper

        if call_args:
            return decorate(call_args[0])
        return decorate
