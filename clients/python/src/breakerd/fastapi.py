"""FastAPI glue (`pip install breakerd[fastapi]`): a denied call becomes 503 with Retry-After.

    install(app)                                         # the exception handler
    @app.get("/quote", dependencies=[protect(shipping)]) # a whole route behind a breaker
"""

from __future__ import annotations

import math
import time
from typing import Any, AsyncIterator

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from ._breaker import Breaker
from ._client import FAILURE, IGNORE, SUCCESS, Decision
from ._errors import CircuitBreakerError


def retry_after_header(error: CircuitBreakerError) -> str:
    """Whole seconds, rounded up, at least 1: a client told 0 would come straight back."""
    return str(max(1, math.ceil(error.retry_after)))


async def circuit_breaker_error_handler(request: Request, error: CircuitBreakerError) -> JSONResponse:
    """503 Service Unavailable with Retry-After, and the deny's figures in the body."""
    return JSONResponse(
        status_code=503,
        content={
            "detail": "service unavailable: a dependency's circuit breaker is open",
            "breaker": error.breaker,
            "state": error.state,
            "reason": error.reason,
            "retry_after": round(error.retry_after, 3),
        },
        headers={"Retry-After": retry_after_header(error)},
    )


def install(app: FastAPI) -> FastAPI:
    """Register circuit_breaker_error_handler for CircuitBreakerError on `app`."""
    app.add_exception_handler(CircuitBreakerError, circuit_breaker_error_handler)
    return app


def protect(breaker: Breaker) -> Any:
    """A dependency that runs the whole path operation through `breaker`: denied requests get 503
    (with install(app)); an exception the route raises is a failure, except an HTTPException below
    500 (the client's mistake, IGNORE) and what the breaker's `exclude` matches. The dependency
    ends when the path operation returns (scope="function"), so the latency reported is the
    route's, not the time to send the response. The Decision is the dependency's value."""

    async def breaker_dependency() -> AsyncIterator[Decision]:
        decision = await breaker.breakers.acquire_async(breaker.name)
        if not decision.permitted:
            raise decision.error()
        started = time.monotonic()
        outcome = SUCCESS
        try:
            yield decision
        except HTTPException as error:
            outcome = FAILURE if error.status_code >= 500 else IGNORE
            raise
        except BaseException as error:
            outcome = breaker.outcome_for_error(error)
            raise
        finally:
            breaker.breakers.report(decision, outcome, time.monotonic() - started)

    return Depends(breaker_dependency, scope="function")
