"""An httpx transport that sends every request through a breaker per host (`pip install breakerd[httpx]`).

    client = httpx.AsyncClient(transport=BreakerTransport(httpx.AsyncHTTPTransport(), breakers))

A denied request raises CircuitBreakerError before anything is sent. A transport error (refused,
timed out, reset) and a 5xx answer count as failures, everything else as a success; `is_failure`
(a response -> bool) and `exclude` (exception types or callables) change that."""

from __future__ import annotations

import re
import time
from typing import Any, Callable

import httpx

from ._client import FAILURE, IGNORE, SUCCESS, Breakers, Decision

_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9._:/-]")


def host_breaker_name(request: httpx.Request) -> str:
    """The default breaker of a request: its host, with the port when the URL names one."""
    url = request.url
    name = url.host if url.port is None else f"{url.host}:{url.port}"
    return _NAME_UNSAFE.sub("-", name)[:128] or "-"


def server_error(response: httpx.Response) -> bool:
    return response.status_code >= 500


class BreakerTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Wraps `inner` (an httpx.HTTPTransport or AsyncHTTPTransport; one of each is made when None)
    for an httpx.Client and an httpx.AsyncClient alike.

    `name` is a breaker name for every request, or a function of the request; by default one
    breaker per host (host_breaker_name). The latency reported is the time to the response's
    headers: what the breaker judges is whether the dependency answers, not how long the caller
    takes to read the body."""

    def __init__(
        self,
        inner: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None,
        breakers: Breakers | None = None,
        *,
        name: str | Callable[[httpx.Request], str] | None = None,
        is_failure: Callable[[httpx.Response], bool] = server_error,
        exclude: tuple = (),
    ):
        if breakers is None:
            raise TypeError("BreakerTransport needs breakers=Breakers(...) or AsyncBreakers(...)")
        self.inner = inner
        self.breakers = breakers
        self.name = name
        self.is_failure = is_failure
        self.exclude = tuple(exclude) if isinstance(exclude, (tuple, list)) else (exclude,)

    def breaker_name(self, request: httpx.Request) -> str:
        if self.name is None:
            return host_breaker_name(request)
        return self.name(request) if callable(self.name) else self.name

    def _outcome_for_error(self, error: BaseException) -> str:
        for item in self.exclude:
            if (isinstance(item, type) and isinstance(error, item)) or (not isinstance(item, type) and item(error)):
                return IGNORE
        return FAILURE if isinstance(error, Exception) else IGNORE  # cancellation is the caller's

    def _finish(self, decision: Decision, started: float, response: httpx.Response | None, error: BaseException | None) -> None:
        if error is not None:
            outcome = self._outcome_for_error(error)
        else:
            outcome = FAILURE if self.is_failure(response) else SUCCESS
        self.breakers.report(decision, outcome, time.monotonic() - started)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.inner is None:
            self.inner = httpx.HTTPTransport()
        if not isinstance(self.inner, httpx.BaseTransport):
            raise TypeError(f"an httpx.Client needs a sync inner transport, got {type(self.inner).__name__}")
        decision = self.breakers.acquire(self.breaker_name(request))
        if not decision.permitted:
            raise decision.error()
        started = time.monotonic()
        try:
            response = self.inner.handle_request(request)
        except BaseException as error:
            self._finish(decision, started, None, error)
            raise
        self._finish(decision, started, response, None)
        return response

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.inner is None:
            self.inner = httpx.AsyncHTTPTransport()
        if not isinstance(self.inner, httpx.AsyncBaseTransport):
            raise TypeError(f"an httpx.AsyncClient needs an async inner transport, got {type(self.inner).__name__}")
        decision = await self.breakers.acquire_async(self.breaker_name(request))
        if not decision.permitted:
            raise decision.error()
        started = time.monotonic()
        try:
            response = await self.inner.handle_async_request(request)
        except BaseException as error:
            self._finish(decision, started, None, error)
            raise
        self._finish(decision, started, response, None)
        return response

    def close(self) -> None:
        if isinstance(self.inner, httpx.BaseTransport):
            self.inner.close()

    async def aclose(self) -> None:
        if isinstance(self.inner, httpx.AsyncBaseTransport):
            await self.inner.aclose()

    def __enter__(self) -> "BreakerTransport":
        return self

    def __exit__(self, *args: Any) -> None:
        self.close()

    async def __aenter__(self) -> "BreakerTransport":
        return self

    async def __aexit__(self, *args: Any) -> None:
        await self.aclose()
