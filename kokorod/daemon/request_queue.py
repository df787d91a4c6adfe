"""Requests wait for a stream slot instead of being refused.

Two kinds of admission share one scheduler (docs/operations.md, *Capacity*):

- a real-time *stream* (a WebSocket listener, pipecat, LiveKit, Wyoming
  streaming synthesis) is admitted only if it can play without underruns
  (kokorod.daemon.admission.Capacity), else refused with ``overloaded``: its
  client plays audio as it comes, and a late start is a stall;
- a *request* (a Wyoming one-shot ``synthesize``, an OpenAI
  ``/v1/audio/speech`` call, a ``speak`` with ``"admission": "queue"``) wants
  the audio now or a few seconds later: it waits here, in FIFO order, for the
  same slots, and is refused only past ``--max-queued`` waiting requests or
  after ``--queue-timeout-s`` seconds.

``RequestQueue`` is the plain logic (time passed in, no I/O) and
``RequestAdmission`` its asyncio shell: one future per waiter and one timer for
the earliest deadline. Slots are freed by sessions (``Capacity.release``); the
session then calls ``pump()``, which hands them to the waiters at the head.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable

from kokorod.config import DEFAULT_MAX_QUEUED, DEFAULT_QUEUE_TIMEOUT_S  # why: said with the settings
from kokorod.daemon.admission import Capacity

LIMIT_DEPTH = "max_queued"
LIMIT_TIMEOUT = "queue_timeout_s"


class QueueRefused(Exception):
    """A request the queue will not serve; ``limit`` names the bound that was hit."""

    def __init__(self, limit: str, message: str) -> None:
        super().__init__(message)
        self.limit, self.message = limit, message


@dataclass(eq=False)
class Ticket:
    """One waiting request's place in the queue."""

    holder: object          # the session that will hold the slot
    speed: float            # the stream's speed (admission's demand depends on it)
    joined_at: float        # clock seconds
    deadline: float
    waited_s: float | None = None  # set when admitted
    future: Any = field(default=None, repr=False)  # the asyncio shell's


class RequestQueue:
    """A FIFO of requests waiting for a stream slot, bounded by depth and by a deadline.

    Strict FIFO: only the head may take a slot, so a short request never
    overtakes one that waited longer. Plain object: ``now`` is passed in.
    """

    def __init__(self, max_queued: int = DEFAULT_MAX_QUEUED, timeout_s: float = DEFAULT_QUEUE_TIMEOUT_S) -> None:
        self.max_queued = max(0, max_queued)
        self.timeout_s = timeout_s
        self._waiting: OrderedDict[Ticket, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._waiting)

    def join(self, holder: object, speed: float, now: float) -> Ticket:
        if len(self._waiting) >= self.max_queued:
            raise QueueRefused(LIMIT_DEPTH, f"the daemon is at capacity and its request queue is full "
                                            f"({self.max_queued} waiting, --max-queued); try again shortly")
        ticket = Ticket(holder, speed, now, now + self.timeout_s)
        self._waiting[ticket] = None
        return ticket

    def leave(self, ticket: Ticket) -> bool:
        """Give up a place (the client went away); False when it had none."""
        return self._waiting.pop(ticket, False) is None

    def admit(self, try_acquire: Callable[[object, float], bool], now: float) -> list[Ticket]:
        """Hand slots to the head of the queue while ``try_acquire`` grants them."""
        admitted = []
        while self._waiting:
            head = next(iter(self._waiting))
            if head.deadline <= now or not try_acquire(head.holder, head.speed):
                break
            del self._waiting[head]
            head.waited_s = now - head.joined_at
            admitted.append(head)
        return admitted

    def expire(self, now: float) -> list[Ticket]:
        """Remove and return the tickets whose deadline has passed."""
        expired = [t for t in self._waiting if t.deadline <= now]
        for ticket in expired:
            del self._waiting[ticket]
        return expired

    def next_deadline(self) -> float | None:
        return min((t.deadline for t in self._waiting), default=None)

    def timeout_refusal(self, ticket: Ticket) -> QueueRefused:
        return QueueRefused(LIMIT_TIMEOUT, f"the daemon stayed at capacity: waited {self.timeout_s:g} s in the "
                                           "request queue (--queue-timeout-s) without a slot; try again shortly")


class RequestAdmission:
    """The queue on the event loop: ``enter`` a request, ``await wait(ticket)``
    for its slot, ``leave`` when it is abandoned; ``pump`` after a slot frees."""

    def __init__(self, capacity: Capacity, queue: RequestQueue, metrics: Any = None) -> None:
        self.capacity, self.queue, self.metrics = capacity, queue, metrics
        self._timer: asyncio.TimerHandle | None = None
        self._pump_pending = False

    def enter(self, holder: object, speed: float) -> Ticket | None:
        """None: admitted at once (the slot is the holder's). Else its place in
        the queue. Raises QueueRefused when the queue is full."""
        if not len(self.queue) and self.capacity.try_acquire(holder, speed):
            self._observe_wait(0.0)
            return None
        try:
            ticket = self.queue.join(holder, speed, self._now())
        except QueueRefused:
            if self.metrics is not None:
                self.metrics.request_queue_full.inc()
            raise
        ticket.future = asyncio.get_running_loop().create_future()
        self.pump()  # a slot may be free with only others' expired tickets ahead
        return ticket

    async def wait(self, ticket: Ticket) -> float:
        """Seconds waited once the slot is the holder's; raises QueueRefused at
        the deadline. Cancelling the waiting task leaves the queue."""
        try:
            return float(await ticket.future)
        finally:
            if self.leave(ticket):
                self.pump()

    def leave(self, ticket: Ticket) -> bool:
        """Give up a place; True when it still had one (idempotent)."""
        left = self.queue.leave(ticket)
        if left:
            if not ticket.future.done():
                ticket.future.cancel()
            self._changed()
        return left

    def pump_soon(self) -> None:
        """Pump once the current callback is done. A session whose stream ends
        because it barges in releases its slot and takes it back in the same
        callback (Capacity's returning holder): a waiting request must not
        snatch it in between, or the live conversation would be refused."""
        if not self._pump_pending:
            self._pump_pending = True
            asyncio.get_running_loop().call_soon(self._deferred_pump)

    def _deferred_pump(self) -> None:
        self._pump_pending = False
        self.pump()

    def pump(self) -> None:
        now = self._now()
        for ticket in self.queue.admit(self.capacity.try_acquire, now):
            self._observe_wait(ticket.waited_s or 0.0)
            if not ticket.future.done():
                ticket.future.set_result(ticket.waited_s)
        self._expire()

    def _expire(self) -> None:
        # A millisecond of slack: the loop runs a timer up to its clock
        # resolution early, and a deadline missed by that would re-arm forever.
        for ticket in self.queue.expire(self._now() + 0.001):
            if self.metrics is not None:
                self.metrics.request_queue_timeouts.inc()
            if not ticket.future.done():
                ticket.future.set_exception(self.queue.timeout_refusal(ticket))
        self._changed()

    def _changed(self) -> None:
        """Re-arm the one timer for the earliest deadline and publish the depth."""
        if self.metrics is not None:
            self.metrics.request_queue_depth.set(len(self.queue))
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.queue.next_deadline()
        if deadline is not None:
            self._timer = asyncio.get_running_loop().call_at(deadline, self._expire)

    def _observe_wait(self, waited_s: float) -> None:
        if self.metrics is not None:
            self.metrics.request_queue_wait.observe(waited_s)

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()
