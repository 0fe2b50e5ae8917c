"""A FastAPI app through its TestClient: the README's example shape (an httpx call behind a
per-host breaker), the 503 with Retry-After, and the route dependency."""

from __future__ import annotations

import httpx
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient

from breakerd import AsyncBreakers
from breakerd.fastapi import install, protect
from breakerd.httpx import BreakerTransport
from conftest import set_policy, state_of, trip, wait_for
from test_httpx import FlakyServer


def _address(admin) -> str:
    kwargs = admin.get_connection_kwargs()
    return f"{kwargs['host']}:{kwargs['port']}"


def test_an_httpx_call_in_a_route_becomes_503_with_retry_after_once_open(admin, name):
    server = FlakyServer()
    breakers = AsyncBreakers(_address(admin))
    set_policy(admin, name, min_calls=2, failure_rate=0.6, open_ms=60_000)  # opens at 2 failures of 3

    # The package README's example, with the breaker named for the test.
    payments = httpx.AsyncClient(base_url=server.url, transport=BreakerTransport(httpx.AsyncHTTPTransport(), breakers, name=name))
    app = install(FastAPI())

    @app.get("/charge")
    async def charge():
        response = await payments.get("/charge")
        return {"upstream": response.status_code}

    try:
        with TestClient(app) as client:
            assert client.get("/charge").json() == {"upstream": 200}
            server.status = 500
            assert client.get("/charge").json() == {"upstream": 500}
            assert client.get("/charge").json() == {"upstream": 500}
            wait_for(lambda: state_of(admin, name)["state"] == "open", "the breaker to open")
            hits = server.hits
            denied = client.get("/charge")
            assert denied.status_code == 503
            assert 1 <= int(denied.headers["Retry-After"]) <= 60
            body = denied.json()
            assert (body["breaker"], body["state"], body["reason"]) == (name, "open", "open")
            assert server.hits == hits
    finally:
        server.close()
        breakers.close()


def test_protect_runs_a_route_through_a_breaker(admin, name):
    breakers = AsyncBreakers(_address(admin))
    breaker = breakers.breaker(name)
    app = install(FastAPI())

    @app.get("/ok", dependencies=[protect(breaker)])
    async def ok():
        return {"ok": True}

    @app.get("/missing", dependencies=[protect(breaker)])
    async def missing():
        raise HTTPException(status_code=404)

    @app.get("/broken", dependencies=[protect(breaker)])
    def broken():  # a sync route: FastAPI runs it in a thread
        raise RuntimeError("dependency down")

    @app.get("/decision")
    async def decision(d=protect(breaker)):
        return {"state": d.state, "source": d.source}

    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/ok").status_code == 200
        assert client.get("/missing").status_code == 404  # IGNORE: the client's mistake
        assert client.get("/broken").status_code == 500  # FAILURE
        assert client.get("/decision").json() == {"state": "closed", "source": "breakerd"}
        assert breakers.flush(15)
        s = state_of(admin, name)
        assert (s["calls"], s["failures"]) == ("3", "1")
        trip(admin, name)
        denied = client.get("/ok")
        assert denied.status_code == 503 and "Retry-After" in denied.headers
    breakers.close()
