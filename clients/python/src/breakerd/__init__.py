"""Fleet-wide circuit breakers backed by breakerd: see the package README."""

from ._breaker import Breaker
from ._client import FAILURE, IGNORE, SUCCESS, AsyncBreakers, BreakerEvent, Breakers, Decision, parse_acquire
from ._errors import BreakerdError, CircuitBreakerError
from ._local import LocalPolicy

__all__ = [
    "AsyncBreakers",
    "Breaker",
    "BreakerEvent",
    "Breakers",
    "BreakerdError",
    "CircuitBreakerError",
    "Decision",
    "FAILURE",
    "IGNORE",
    "LocalPolicy",
    "SUCCESS",
    "parse_acquire",
]
__version__ = "0.1.0"
