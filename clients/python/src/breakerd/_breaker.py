"""One breaker's calling forms: decorator, with / async with, call / call_async."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import time
from typing import TYPE_CHECKING, Any, Awaitable, Callable, TypeVar

from ._client import FAILURE, IGNORE, SUCCESS, Decision

if TYPE_CHECKING:
    from ._client import Breakers

T = TypeVar("T")

# The caller's own cancellation or exit says nothing about the dependency (as BreakerClient treats
# CancellationError).
_NOT_THE_DEPENDENCY = (asyncio.CancelledError, KeyboardInterrupt, SystemExit, GeneratorExit)


class Breaker:
    """Protects calls to one dependency through the fleet-wide breaker `name`.

    Each call acquires a permit (or is denied), runs, and reports SUCCESS, FAILURE or IGNORE with
    its latency in the background. A raised exception is FAILURE unless `exclude` (exception types,
    or callables taking the exception) matches it, then IGNORE; a returned value is SUCCESS unless
    `is_failure(value)`. On a deny the call returns `fallback(*args, **kwargs)` (awaited if it is a
    coroutine) or, without a fallback, raises CircuitBreakerError; `with` blocks always raise."""

    def __init__(
        self,
        breakers: "Breakers",
        name: str,
        *,
        fallback: Callable[..., Any] | None = None,
        exclude: Any = (),
        is_failure: Callable[[Any], bool] | None = None,
    ):
        if not isinstance(name, str) or not name:
            raise ValueError(f"a breaker name must be a non-empty string, got {name!r}")
        self.breakers = breakers
        self.name = name
        self.fallback = fallback
        self.exclude = tuple(exclude) if isinstance(exclude, (tuple, list, set, frozenset)) else (exclude,)
        for item in self.exclude:
            if not (isinstance(item, type) and issubclass(item, BaseException)) and not callable(item):
                raise TypeError(f"exclude takes exception types or callables, got {item!r}")
        self.is_failure = is_failure
        self._entered: contextvars.ContextVar[tuple[tuple[Decision, float], ...]] = contextvars.ContextVar(
            f"breakerd-{name}", default=()
        )

    def __repr__(self) -> str:
        return f"<Breaker {self.name!r}>"

    # -- classification ---------------------------------------------------------------------------

    def outcome_for_error(self, error: BaseException) -> str:
        if isinstance(error, _NOT_THE_DEPENDENCY):
            return IGNORE
        for item in self.exclude:
            if isinstance(item, type):
                if isinstance(error, item):
                    return IGNORE
            elif item(error):
                return IGNORE
        return FAILURE

    def outcome_for_result(self, result: Any) -> str:
        return FAILURE if self.is_failure is not None and self.is_failure(result) else SUCCESS

    def _report(self, decision: Decision, outcome: str, started: float) -> None:
        self.breakers.report(decision, outcome, time.monotonic() - started)

    # -- call forms -------------------------------------------------------------------------------

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(*args, **kwargs)` through the breaker."""
        decision = self.breakers.acquire(self.name)
        if not decision.permitted:
            if self.fallback is None:
                raise decision.error()
            return self.fallback(*args, **kwargs)
        started = time.monotonic()
        try:
            result = fn(*args, **kwargs)
        except BaseException as error:
            self._report(decision, self.outcome_for_error(error), started)
            raise
        self._report(decision, self.outcome_for_result(result), started)
        return result

    async def call_async(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """Await `fn(*args, **kwargs)` through the breaker; ACQUIRE goes through redis.asyncio."""
        decision = await self.breakers.acquire_async(self.name)
        if not decision.permitted:
            if self.fallback is None:
                raise decision.error()
            result = self.fallback(*args, **kwargs)
            return await result if inspect.isawaitable(result) else result
        started = time.monotonic()
        try:
            result = await fn(*args, **kwargs)
        except BaseException as error:
            self._report(decision, self.outcome_for_error(error), started)
            raise
        self._report(decision, self.outcome_for_result(result), started)
        return result

    def __call__(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Decorate a `def` or an `async def`."""
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                return await self.call_async(fn, *args, **kwargs)

            return async_wrapper

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return self.call(fn, *args, **kwargs)

        return wrapper

    # -- with / async with ------------------------------------------------------------------------

    def _enter(self, decision: Decision) -> Decision:
        if not decision.permitted:
            raise decision.error()
        self._entered.set(self._entered.get() + ((decision, time.monotonic()),))
        return decision

    def _exit(self, error: BaseException | None) -> None:
        stack = self._entered.get()
        if not stack:
            raise RuntimeError(f"breaker {self.name!r} exited without being entered")
        decision, started = stack[-1]
        self._entered.set(stack[:-1])
        self._report(decision, SUCCESS if error is None else self.outcome_for_error(error), started)

    def __enter__(self) -> Decision:
        return self._enter(self.breakers.acquire(self.name))

    def __exit__(self, exc_type: Any, error: BaseException | None, tb: Any) -> None:
        self._exit(error)

    async def __aenter__(self) -> Decision:
        return self._enter(await self.breakers.acquire_async(self.name))

    async def __aexit__(self, exc_type: Any, error: BaseException | None, tb: Any) -> None:
        self._exit(error)
