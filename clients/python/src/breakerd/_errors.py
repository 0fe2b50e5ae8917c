"""The exceptions the package raises."""

from __future__ import annotations


class CircuitBreakerError(Exception):
    """A call was denied: the breaker is open, its trials are busy, or breakerd could not be reached
    and `on_unreachable="deny"` (or the local breaker) said no.

    `retry_after` is in seconds; `reason` is the DENY reply's reason word (see Decision.reason);
    `source` says who decided: "breakerd", "cache" (known open, no round trip), "local" (the
    in-process breaker used while breakerd is unreachable) or "unreachable" (`on_unreachable="deny"`).
    """

    def __init__(self, breaker: str, state: str, retry_after: float, reason: str | None, source: str):
        self.breaker = breaker
        self.state = state
        self.retry_after = retry_after
        self.reason = reason
        self.source = source
        super().__init__(
            f"breaker '{breaker}' denied the call: {state}"
            f"{f' ({reason})' if reason and reason != state else ''}, retry after {retry_after:.3f}s"
            f"{'' if source == 'breakerd' else f' [{source}]'}"
        )


class BreakerdError(Exception):
    """breakerd answered with an error reply (a wrong password, a bad breaker name, a refused
    command): a mistake to fix, not an outage, so it is raised instead of running unprotected.

    `code` is the reply's first word (`ERR`, `NOAUTH`, `WRONGPASS`, `NOPERM`, ...)."""

    def __init__(self, message: str, code: str = "ERR"):
        self.code = code
        super().__init__(message)
