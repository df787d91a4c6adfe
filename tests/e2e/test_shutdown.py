"""SIGTERM mid-stream: the daemon stops accepting, lets speech finish or cancels
it within the drain bound, closes clients with 1001, and exits 0."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest
import websockets

from support.daemon import DaemonProcess, Peer
from kokorod.protocol.messages import Audio, Cancelled, Done, Speak

pytestmark = pytest.mark.slow

LONG = "This is a long answer that keeps going for quite a while. " * 12
SHORT = "A short reply."


async def test_sigterm_mid_stream_drains_and_exits_zero() -> None:
    # Streams in flight at SIGTERM, however many this CPU could feed at 1x.
    daemon = DaemonProcess("--stream-utilisation", "inf")
    try:
        long_peer = await Peer.connect(daemon.url)
        short_peer = await Peer.connect(daemon.url)
        await long_peer.send(Speak("long", LONG, final=True))
        await long_peer.until(lambda e: isinstance(e, Audio))
        await short_peer.send(Speak("short", SHORT, final=True))
        await short_peer.until(lambda e: isinstance(e, Audio))
        started = time.monotonic()
        daemon.proc.send_signal(signal.SIGTERM)

        async def drain(peer: Peer, uid: str) -> tuple[object, int | None]:
            last = None
            try:
                while True:
                    event = await peer.recv(timeout=30)
                    if isinstance(event, (Done, Cancelled)) and event.utterance == uid:
                        last = event
            except websockets.ConnectionClosed as closed:
                return last, closed.rcvd.code if closed.rcvd else None

        (long_end, long_code), (short_end, short_code) = await asyncio.gather(
            drain(long_peer, "long"), drain(short_peer, "short"))
        # The short reply finishes within the drain bound; the long one is cut off
        # with an explicit reason, not by a dropped socket.
        assert isinstance(short_end, Done)
        assert isinstance(long_end, Cancelled) and long_end.reason == "shutdown"
        assert long_code == short_code == 1001
        # New connections are refused while draining (503: the listener stays
        # open for /readyz until the drain ends) or after exit.
        with pytest.raises((OSError, websockets.InvalidStatus)):
            await websockets.connect(daemon.url, open_timeout=2)
        returncode = await asyncio.get_running_loop().run_in_executor(None, daemon.proc.wait, 30)
        assert returncode == 0, daemon.log()[-2000:]
        assert time.monotonic() - started < 5.0 + 5.0  # drain bound + model/thread teardown
    finally:
        daemon.stop()
