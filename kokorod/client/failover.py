"""Failover policy (sans-I/O): which URL next, how long to wait, when to give up,
and the ``Resumed`` event a stream gets where a resumed utterance continues."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Sequence

__all__ = ["Resumed", "FailoverPolicy", "RetryState"]


@dataclass(frozen=True, slots=True)
class Resumed:
    """Client-side event, in ``stream(uid)`` right before the first event of the
    resumed part: the utterance continues on ``url`` at stream time ``at_s``,
    re-speaking from ``text_offset`` (characters into what was sent), with words
    from index ``word_index`` (a word with an index seen before replaces it)."""

    utterance: str
    at_s: float
    url: str
    word_index: int = 0
    text_offset: int = 0
    reason: str = "connection_lost"   # or "overloaded"


@dataclass(frozen=True, slots=True)
class FailoverPolicy:
    """Bounded retries with exponential backoff and jitter.

    ``max_retries`` connection attempts (or re-sends after ``overloaded``) in a
    row without progress, within ``retry_budget_s`` of the first failure; the
    n-th waits ``min(backoff_max_s, backoff_base_s * 2**n)`` times a random
    factor in [0.5, 1) so clients refused together do not come back together.
    Moving to another URL after a lost connection does not wait."""

    max_retries: int = 4
    retry_budget_s: float = 30.0
    backoff_base_s: float = 0.2
    backoff_max_s: float = 5.0

    def delay_s(self, attempt: int, other_url: bool, overloaded: bool, rng: random.Random,
                base_s: float | None = None) -> float:
        if other_url and not overloaded and attempt == 0:
            return 0.0
        base = max(self.backoff_base_s, base_s or 0.0)
        return min(self.backoff_max_s, base * 2 ** attempt) * rng.uniform(0.5, 1.0)


@dataclass(slots=True)
class RetryState:
    """The current streak of failures; progress (audio received) ends it."""

    urls: Sequence[str]
    index: int = 0
    attempts: int = 0
    started_at: float | None = None
    rng: random.Random = field(default_factory=random.Random)

    @property
    def url(self) -> str:
        return self.urls[self.index]

    def next_url(self) -> str:
        self.index = (self.index + 1) % len(self.urls)
        return self.url

    def fail(self, now: float | None = None) -> None:
        self.attempts += 1
        if self.started_at is None:
            self.started_at = time.monotonic() if now is None else now

    def exhausted(self, policy: FailoverPolicy, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        return self.attempts >= policy.max_retries or (
            self.started_at is not None and now - self.started_at > policy.retry_budget_s)

    def progress(self) -> None:
        self.attempts = 0
        self.started_at = None
