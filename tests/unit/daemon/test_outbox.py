from __future__ import annotations

import asyncio

from kokorod.daemon.outbox import Outbox
from kokorod.protocol.messages import Audio, Cancelled, WordEvent


def _audio(utt: str, seq: int) -> Audio:
    return Audio(utt, seq, seq * 2400, 2400, 24000, "pcm_s16le", b"\0" * 4800)


async def test_purge_drops_only_that_utterance_and_tracks_seconds() -> None:
    box = Outbox()
    for i in range(3):
        box.put(_audio("old", i))
        box.put(_audio("new", i))
    box.put(WordEvent("old", 0, "hi", 0.0, 0.1))
    assert abs(box.audio_s - 0.6) < 1e-9
    assert box.purge("old") == 4
    box.put(Cancelled("old", "barge_in"))
    assert abs(box.audio_s - 0.3) < 1e-9
    got = [await box.get() for _ in range(len(box))]
    assert [getattr(e, "utterance") for e in got] == ["new", "new", "new", "old"]
    assert isinstance(got[-1], Cancelled)
    assert box.audio_s == 0


async def test_get_waits_for_put() -> None:
    box = Outbox()
    waiter = asyncio.create_task(box.get())
    await asyncio.sleep(0.01)
    assert not waiter.done()
    box.put(Cancelled("u", "cancel"))
    assert (await asyncio.wait_for(waiter, 1)).utterance == "u"


async def test_wait_below_returns_once_the_writer_has_taken_enough() -> None:
    box = Outbox()
    for i in range(5):  # 0.5 s
        box.put(_audio("u", i))
    assert await box.wait_below(0.5, timeout_s=0.0)  # already there
    assert not await box.wait_below(0.2, timeout_s=0.05)  # nobody reads: gives up

    async def reader() -> None:
        for _ in range(3):
            await asyncio.sleep(0.01)
            await box.get()

    task = asyncio.create_task(reader())
    assert await box.wait_below(0.2, timeout_s=30)
    assert abs(box.audio_s - 0.2) < 1e-9
    await task
    box.purge("u")
    assert await box.wait_below(0.0, timeout_s=0.0)


async def test_a_cancel_that_comes_with_the_wake_up_is_not_lost() -> None:
    # Session._cancel purges the utterance's frames (waking the waiter) and
    # cancels its task in the same loop step: the task must end, not run on.
    box = Outbox()
    for i in range(5):
        box.put(_audio("u", i))
    waiter = asyncio.create_task(box.wait_below(0.1, timeout_s=30))
    await asyncio.sleep(0.01)
    box.purge("u")
    waiter.cancel()
    await asyncio.wait([waiter])
    assert waiter.cancelled()


async def test_bytes_count_every_event_and_return_to_zero() -> None:
    from kokorod.protocol.messages import Warning

    box = Outbox()
    box.put(_audio("a", 0))
    box.put(Warning("a", "unspeakable", "skipped", "\U0001F600" * 1000))
    box.put(WordEvent("b", 0, "hi", 0.0, 0.1))
    assert box.nbytes >= 4800 + 1000  # the pcm and the warning's text at least
    warning_only = box.nbytes
    assert box.purge("a") == 2
    assert 0 < box.nbytes < warning_only - 4800 - 1000 + 1
    await box.get()
    assert box.nbytes == 0


async def test_a_flood_of_small_events_is_counted() -> None:
    box = Outbox()
    for _ in range(1000):
        box.put(Cancelled("u", "cancel"))
    assert box.audio_s == 0
    assert box.nbytes >= 1000 * 100  # the per-event overhead, not just the strings
