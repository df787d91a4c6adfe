"""The request queue: FIFO, depth bound, deadline, abandonment (kokorod.daemon.request_queue)."""

from __future__ import annotations

import asyncio

import pytest

from kokorod.daemon.admission import Capacity
from kokorod.daemon.request_queue import (
    LIMIT_DEPTH, LIMIT_TIMEOUT, QueueRefused, RequestAdmission, RequestQueue,
)
from kokorod.metrics import Metrics


class Holder:
    """A session as Capacity sees one: it holds its slot while it has utterances."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.utterances = ["u"]

    def done(self) -> None:
        self.utterances = []

    def __repr__(self) -> str:
        return self.name


def one_slot() -> Capacity:
    return Capacity(max_active=1)


# -- the plain queue -----------------------------------------------------------

def test_fifo_only_the_head_takes_a_slot():
    q = RequestQueue(max_queued=5, timeout_s=10)
    a, b, c = (q.join(Holder(n), 1.0, now=i) for i, n in enumerate("abc"))
    granted: list[object] = []

    def grant_two(holder: object, speed: float) -> bool:
        if len(granted) == 2:
            return False
        granted.append(holder)
        return True

    assert q.admit(grant_two, now=5) == [a, b]
    assert granted == [a.holder, b.holder]
    assert (a.waited_s, b.waited_s) == (5, 4)
    assert len(q) == 1 and q.admit(lambda h, s: True, now=6) == [c]


def test_a_refused_head_blocks_the_rest():
    q = RequestQueue(max_queued=5, timeout_s=10)
    q.join(Holder("big"), 2.0, now=0)
    small = q.join(Holder("small"), 1.0, now=0)
    assert q.admit(lambda h, speed: speed < 2, now=1) == []  # no overtaking
    assert small in q._waiting


def test_depth_bound_names_its_limit():
    q = RequestQueue(max_queued=2, timeout_s=10)
    q.join(Holder("a"), 1.0, 0)
    q.join(Holder("b"), 1.0, 0)
    with pytest.raises(QueueRefused) as refused:
        q.join(Holder("c"), 1.0, 0)
    assert refused.value.limit == LIMIT_DEPTH and "--max-queued" in refused.value.message
    assert "2 waiting" in refused.value.message


def test_deadline_expires_and_is_never_admitted():
    q = RequestQueue(max_queued=5, timeout_s=3)
    old = q.join(Holder("old"), 1.0, now=0)
    new = q.join(Holder("new"), 1.0, now=2)
    assert q.next_deadline() == 3
    assert q.admit(lambda h, s: True, now=3) == []  # past its deadline: not served late
    assert q.expire(now=3) == [old]
    assert q.next_deadline() == 5 and q.admit(lambda h, s: True, now=4) == [new]
    assert q.timeout_refusal(old).limit == LIMIT_TIMEOUT
    assert "--queue-timeout-s" in q.timeout_refusal(old).message


def test_leaving_frees_the_place():
    q = RequestQueue(max_queued=1, timeout_s=10)
    t = q.join(Holder("a"), 1.0, 0)
    assert q.leave(t) and not q.leave(t) and len(q) == 0
    q.join(Holder("b"), 1.0, 0)  # the place is free again


# -- the asyncio shell ---------------------------------------------------------

async def test_waiters_get_the_slot_in_order_as_it_frees():
    cap, metrics = one_slot(), Metrics()
    adm = RequestAdmission(cap, RequestQueue(5, 30), metrics)
    first = Holder("first")
    assert adm.enter(first, 1.0) is None  # a free slot: admitted at once
    holders = [Holder(f"w{i}") for i in range(3)]
    tickets = [adm.enter(h, 1.0) for h in holders]
    assert all(t is not None for t in tickets)
    assert metrics.request_queue_depth._value.get() == 3
    order: list[str] = []

    async def wait(ticket, holder):
        await adm.wait(ticket)
        order.append(holder.name)

    tasks = [asyncio.create_task(wait(t, h)) for t, h in zip(tickets, holders)]
    for holder in [first, *holders]:
        await asyncio.sleep(0.01)
        holder.done()
        cap.release()
        adm.pump()
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert order == ["w0", "w1", "w2"]
    assert metrics.request_queue_depth._value.get() == 0


async def test_a_full_queue_refuses_and_counts():
    cap, metrics = one_slot(), Metrics()
    adm = RequestAdmission(cap, RequestQueue(1, 30), metrics)
    adm.enter(Holder("slot"), 1.0)
    ticket = adm.enter(Holder("waiting"), 1.0)
    with pytest.raises(QueueRefused) as refused:
        adm.enter(Holder("extra"), 1.0)
    assert refused.value.limit == LIMIT_DEPTH
    assert metrics.request_queue_full._value.get() == 1
    adm.leave(ticket)


async def test_the_deadline_refuses_a_waiter_on_its_own():
    cap, metrics = one_slot(), Metrics()
    adm = RequestAdmission(cap, RequestQueue(5, 0.2), metrics)
    adm.enter(Holder("slot"), 1.0)  # never released
    ticket = adm.enter(Holder("waiting"), 1.0)
    with pytest.raises(QueueRefused) as refused:
        await asyncio.wait_for(adm.wait(ticket), 5)
    assert refused.value.limit == LIMIT_TIMEOUT
    assert metrics.request_queue_timeouts._value.get() == 1
    assert len(adm.queue) == 0 and adm._timer is None


async def test_a_cancelled_waiter_leaves_at_once_and_the_next_gets_the_slot():
    cap = one_slot()
    adm = RequestAdmission(cap, RequestQueue(5, 30))
    slot = Holder("slot")
    adm.enter(slot, 1.0)
    gone, next_ = Holder("gone"), Holder("next")
    t_gone, t_next = adm.enter(gone, 1.0), adm.enter(next_, 1.0)
    waiting = asyncio.create_task(adm.wait(t_gone))
    following = asyncio.create_task(adm.wait(t_next))
    await asyncio.sleep(0.01)
    waiting.cancel()  # its client went away
    await asyncio.wait([waiting])
    assert len(adm.queue) == 1
    slot.done()
    cap.release()
    adm.pump()
    assert await asyncio.wait_for(following, 5) >= 0
    assert cap.active == 1 and next_ in cap._held and gone not in cap._held


async def test_a_new_request_queues_behind_waiters_even_if_a_slot_looks_free():
    cap = Capacity(max_active=2)
    adm = RequestAdmission(cap, RequestQueue(5, 30))
    a, b = Holder("a"), Holder("b")
    adm.enter(a, 1.0)
    adm.enter(b, 1.0)
    t_c = adm.enter(Holder("c"), 1.0)
    assert t_c is not None
    a.done()
    cap.release()
    # No pump yet: a newcomer must not take the free slot ahead of c.
    t_d = adm.enter(Holder("d"), 1.0)
    assert t_c.future.done() and t_d is not None and not t_d.future.done()
    adm.leave(t_d)
