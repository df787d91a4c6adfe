"""Sessions with the request queue: a request (`"admission": "queue"`) waits
for the slot a stream holds, a stream is refused meanwhile, a barge-in keeps
its own slot, and a cancelled request leaves the queue (fake engine)."""

from __future__ import annotations

import asyncio
from typing import Any

from kokorod.config import ServerConfig
from kokorod.daemon.admission import Capacity
from kokorod.daemon.request_queue import RequestAdmission, RequestQueue
from kokorod.daemon.scheduler import EngineScheduler
from kokorod.daemon.session import Services, Session
from kokorod.metrics import Metrics
from kokorod.protocol.codec import MsgpackCodec
from kokorod.protocol.messages import Audio, Cancel, Cancelled, Done, Error, Ready, Speak
from support.session_fakes import FakeSynth, Peer, RequestDaemon as Daemon, ended  # noqa: F401


async def test_a_request_waits_for_the_slot_while_a_stream_is_refused() -> None:
    d = Daemon()
    holder, request, stream = [await d.connect(FakeSynth(delay_s=0.05)) for _ in range(3)]
    await holder.say(Speak("a", "Sentence one. " * 10, final=True))
    await holder.wait_for(lambda e: isinstance(e, Audio))
    await request.say(Speak("r", "Please wait for me.", final=True, admission="queue"))
    await stream.say(Speak("s", "I cannot wait.", final=True))
    refused = await stream.wait_for(ended("s"))
    assert isinstance(refused, Error) and refused.code == "overloaded"
    assert d.metrics.request_queue_depth._value.get() == 1
    assert not [e for e in request.events if getattr(e, "utterance", None) == "r"]  # nothing while it waits
    await holder.wait_for(ended("a"), 30)
    assert isinstance(await request.wait_for(ended("r"), 30), Done)
    assert d.metrics.request_queue_depth._value.get() == 0
    await d.close()


async def test_a_barge_in_keeps_its_slot_while_a_request_waits() -> None:
    d = Daemon()
    talker, request = [await d.connect(FakeSynth(delay_s=0.05)) for _ in range(2)]
    await talker.say(Speak("a", "Sentence one. " * 10, final=True))
    await talker.wait_for(lambda e: isinstance(e, Audio))
    await request.say(Speak("r", "Please wait for me.", final=True, admission="queue"))
    await asyncio.sleep(0.05)
    await talker.say(Speak("b", "Actually, stop.", final=True))  # interrupt: replaces its stream
    assert isinstance(await talker.wait_for(ended("b"), 30), Done)
    assert isinstance(await request.wait_for(ended("r"), 30), Done)  # then the request is served
    await d.close()


async def test_a_cancelled_request_leaves_the_queue_and_its_deadline_refuses_the_rest() -> None:
    d = Daemon(timeout_s=0.5)
    holder, gone, late = [await d.connect(FakeSynth(delay_s=0.05)) for _ in range(3)]
    await holder.say(Speak("a", "Sentence one. " * 40, final=True))
    await holder.wait_for(lambda e: isinstance(e, Audio))
    await gone.say(Speak("g", "Never mind.", final=True, admission="queue"))
    await late.say(Speak("l", "Too late.", final=True, admission="queue"))
    await asyncio.sleep(0.05)
    assert len(d.requests.queue) == 2
    await gone.say(Cancel("g"))
    assert isinstance(await gone.wait_for(ended("g")), Cancelled)
    assert len(d.requests.queue) == 1
    error = await late.wait_for(ended("l"), 10)
    assert isinstance(error, Error) and error.code == "overloaded" and "--queue-timeout-s" in error.message
    assert len(d.requests.queue) == 0 and d.metrics.request_queue_timeouts._value.get() == 1
    await holder.say(Cancel())
    await d.close()
