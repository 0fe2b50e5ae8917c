"""BreakerTransport against a real local HTTP server that fails on demand, with httpx.Client and
httpx.AsyncClient."""

from __future__ import annotations

import asyncio
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from breakerd import AsyncBreakers, CircuitBreakerError
from breakerd.httpx import BreakerTransport, host_breaker_name
from conftest import set_policy, state_of, wait_for


class FlakyServer:
    """Answers every request with `status` (200 until told otherwise) and counts what it got."""

    def __init__(self):
        self.status = 200
        self.hits = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.hits += 1
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = f'{{"status": {server.status}}}'.encode()
                self.send_response(server.status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = FlakyServer()
    yield s
    s.close()


def test_sync_client_counts_5xx_as_failures_and_trips(admin, name, breakers, server):
    set_policy(admin, name, min_calls=4, failure_rate=0.5, open_ms=60_000)
    client = httpx.Client(transport=BreakerTransport(httpx.HTTPTransport(), breakers, name=name))
    assert client.get(f"{server.url}/a").status_code == 200
    server.status = 404  # the client's mistake: the dependency answered
    assert client.get(f"{server.url}/b").status_code == 404
    server.status = 503
    assert client.get(f"{server.url}/c").status_code == 503  # a 5xx is returned, and counted
    assert client.get(f"{server.url}/d").status_code == 503
    wait_for(lambda: state_of(admin, name)["state"] == "open", "the breaker to open")
    hits = server.hits
    with pytest.raises(CircuitBreakerError) as caught:
        client.get(f"{server.url}/e")
    assert caught.value.breaker == name
    assert server.hits == hits  # denied before anything was sent
    client.close()


def test_async_client(admin, name, server):
    set_policy(admin, name, min_calls=2, failure_rate=0.5, open_ms=60_000)

    async def main():
        breakers = AsyncBreakers(_address(admin))
        async with httpx.AsyncClient(transport=BreakerTransport(httpx.AsyncHTTPTransport(), breakers, name=name)) as client:
            server.status = 500
            for _ in range(2):
                assert (await client.get(server.url)).status_code == 500
            await breakers.flush_async(15)
            with pytest.raises(CircuitBreakerError):
                await client.get(server.url)
        await breakers.aclose()

    asyncio.run(main())
    assert state_of(admin, name)["state"] == "open"


def test_transport_errors_are_failures(admin, name, breakers, closed_address):
    set_policy(admin, name, min_calls=2, failure_rate=0.5, open_ms=60_000)
    client = httpx.Client(transport=BreakerTransport(None, breakers, name=name))
    for _ in range(2):
        with pytest.raises(httpx.ConnectError):
            client.get(f"http://{closed_address}/")
    breakers.flush(15)
    assert state_of(admin, name)["state"] == "open"
    with pytest.raises(CircuitBreakerError):
        client.get(f"http://{closed_address}/")


def test_is_failure_and_exclude_are_configurable(admin, name, breakers, server):
    transport = BreakerTransport(
        httpx.HTTPTransport(), breakers, name=lambda request: name, is_failure=lambda r: r.status_code == 429,
        exclude=(httpx.ConnectError,),
    )
    client = httpx.Client(transport=transport)
    server.status = 500
    client.get(server.url)  # not a failure here
    server.status = 429
    client.get(server.url)
    breakers.flush(15)
    s = state_of(admin, name)
    assert (s["calls"], s["failures"]) == ("2", "1")


def test_one_breaker_per_host_by_default(admin, breakers):
    one, two = FlakyServer(), FlakyServer()
    try:
        names = [host_breaker_name(httpx.Request("GET", s.url)) for s in (one, two)]
        assert names == [s.url.removeprefix("http://") for s in (one, two)]
        for n in names:  # ports may have been used by an earlier run's server
            admin.execute_command("RESET", n)
        set_policy(admin, names[0], min_calls=1, open_ms=60_000)
        client = httpx.Client(transport=BreakerTransport(httpx.HTTPTransport(), breakers))
        one.status = 502
        client.get(one.url)
        wait_for(lambda: state_of(admin, names[0])["state"] == "open", "the first host's breaker to open")
        with pytest.raises(CircuitBreakerError):
            client.get(one.url)
        assert client.get(two.url).status_code == 200  # the other host is not affected
        client.close()
    finally:
        one.close()
        two.close()


def test_a_sync_inner_transport_in_an_async_client_is_refused(breakers):
    async def main():
        async with httpx.AsyncClient(transport=BreakerTransport(httpx.HTTPTransport(), breakers)) as client:
            await client.get("http://127.0.0.1:1/")

    with pytest.raises(TypeError, match="async inner transport"):
        asyncio.run(main())


def _address(admin) -> str:
    kwargs = admin.get_connection_kwargs()
    return f"{kwargs['host']}:{kwargs['port']}"
