"""The FastAPI example at the top of the package README, run as written (only its two addresses
are pointed at the test's breakerd and a local flaky server)."""

from __future__ import annotations

import pathlib
import re

from fastapi.testclient import TestClient

from conftest import set_policy, state_of, wait_for
from test_httpx import FlakyServer

README = pathlib.Path(__file__).parent.parent / "README.md"


def readme_example() -> str:
    match = re.search(r"```python\n(.*?)```", README.read_text(), re.S)
    assert match, "the README has no python example"
    return match.group(1)


def test_the_readme_example_protects_the_route(address, admin):
    code = readme_example()
    assert "redis://127.0.0.1:7420" in code and "http://payments.internal" in code
    server = FlakyServer()
    host = server.url.removeprefix("http://")  # the per-host breaker's name
    admin.execute_command("RESET", host)  # a port an earlier run's server may have had
    set_policy(admin, host, min_calls=2, failure_rate=0.5, open_ms=60_000)
    code = code.replace("redis://127.0.0.1:7420", f"redis://{address}").replace("http://payments.internal", server.url)
    namespace: dict = {}
    exec(compile(code, str(README), "exec"), namespace)
    try:
        with TestClient(namespace["app"]) as client:
            server.status = 500
            for _ in range(2):
                client.post("/charge", json={"amount": 1})
            wait_for(lambda: state_of(admin, host)["state"] == "open", "the payments breaker to open")
            denied = client.post("/charge", json={"amount": 1})
            assert denied.status_code == 503
            assert int(denied.headers["Retry-After"]) >= 1
    finally:
        server.close()
        namespace["breakers"].close()
