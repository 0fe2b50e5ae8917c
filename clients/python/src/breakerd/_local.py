"""The in-process breaker used while breakerd cannot be reached (`on_unreachable="local"`)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from ._client import Decision


@dataclass(frozen=True)
class LocalPolicy:
    """`failures` consecutive failed calls open the local breaker for `open_seconds`; then one trial
    call at a time runs: a success closes it, a failure opens it again. Fed only by this process."""

    failures: int = 5
    open_seconds: float = 30.0

    def __post_init__(self) -> None:
        if not isinstance(self.failures, int) or self.failures < 1:
            raise ValueError(f"LocalPolicy.failures must be a whole number >= 1, got {self.failures!r}")
        if not self.open_seconds > 0:
            raise ValueError(f"LocalPolicy.open_seconds must be above 0, got {self.open_seconds!r}")


class LocalBreaker:
    def __init__(self, policy: LocalPolicy, clock: Callable[[], float]):
        self._policy = policy
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._open_until: float | None = None
        self._trial_until: float | None = None  # a trial's lease: an unreported trial frees its place

    @property
    def state(self) -> str:
        with self._lock:
            return self._state(self._clock())

    def _state(self, now: float) -> str:
        if self._open_until is None:
            return "closed"
        return "open" if now < self._open_until else "half_open"

    def acquire(self, name: str) -> "Decision":
        from ._client import Decision

        now = self._clock()
        with self._lock:
            state = self._state(now)
            if state == "closed":
                return Decision(name, True, state, source="local")
            if state == "open":
                return Decision(name, False, state, retry_after=self._open_until - now, reason="open", source="local")
            if self._trial_until is not None and now < self._trial_until:
                return Decision(name, False, state, retry_after=self._trial_until - now, reason="trials_busy", source="local")
            self._trial_until = now + self._policy.open_seconds
            return Decision(name, True, state, permit="trial", source="local")

    def record(self, outcome: str) -> None:
        now = self._clock()
        with self._lock:
            state = self._state(now)
            if outcome == "IGNORE":
                self._trial_until = None if state == "half_open" else self._trial_until
                return
            if state == "open":
                return  # a call permitted before the breaker opened: it counts nothing now
            if state == "half_open":
                self._trial_until = None
                if outcome == "SUCCESS":
                    self._open_until = None
                    self._failures = 0
                else:
                    self._open_until = now + self._policy.open_seconds
                return
            if outcome == "SUCCESS":
                self._failures = 0
            else:
                self._failures += 1
                if self._failures >= self._policy.failures:
                    self._open_until = now + self._policy.open_seconds
