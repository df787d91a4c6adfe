"""Failover for ``KokorodClient``: replacing a lost or refusing connection and
moving every open utterance onto the new one (docs/client.md).

A connection lost mid-stream, or an utterance refused as ``overloaded`` before
it made a sound, starts one failover task: it reconnects (backoff with jitter,
the next URL, the daemon's retry hint), configures the new connection as the
session was, then *replays*: creates each open utterance there, in creation
order, under a fresh wire id, from the first word the listener has not heard
in full. The sending side (the pumps) lives in ``core``; this module only
moves utterances between connections.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from kokorod.client.connection import Connection, ConnectionLost, DaemonBusy, KokorodServerError
from kokorod.client.failover import FailoverPolicy, Resumed, RetryState
from kokorod.client.outgoing import OpenUtterance
from kokorod.client.resume import speakable
from kokorod.client.session import ClientSession
from kokorod.errors import InputError, KokorodError
from kokorod.protocol.messages import Config, Done, Ready, ServerEvent

log = logging.getLogger("kokorod.client")


class FailingOver(ClientSession):
    """The failover half of ``KokorodClient`` (which sets this state up and
    provides the connection callbacks and the pumps)."""

    failover: bool
    policy: FailoverPolicy
    _open_args: tuple[str | None, str, float]
    _retry: RetryState
    _conn: Connection | None
    _ready: Ready | None
    _utts: dict[str, OpenUtterance]
    _by_wire: dict[str, OpenUtterance]
    _config: dict[str, Any]
    _failing: asyncio.Task[None] | None
    _replaying: asyncio.Task[Any] | None
    _hint_s: float | None

    def _on_event(self, conn: Connection, event: ServerEvent) -> None:
        raise NotImplementedError

    def _on_closed(self, conn: Connection, lost: ConnectionLost | None) -> None:
        raise NotImplementedError

    def _spawn(self, coro: Any) -> None:
        raise NotImplementedError

    async def _pump(self, utt: OpenUtterance) -> None:
        raise NotImplementedError

    def _start_failover(self, reason: str, lost: ConnectionLost | None = None) -> None:
        if self._failing is not None or self._closing:
            return
        old, self._conn = self._conn, None
        self._by_wire = {}
        self._changed.clear()
        if old is not None:
            old.abandon()
        self._failing = asyncio.create_task(self._failover(old, reason, lost), name="kokorod-client-failover")

    async def _failover(self, old: Connection | None, reason: str, lost: ConnectionLost | None) -> None:
        # A refused connection stays open until the new one is placed: behind a
        # balancer that counts connections (HAProxy leastconn) closing it first
        # leaves the same counts, so the retry would land on the same full daemon.
        hold = reason == "overloaded"
        try:
            if old is not None and not hold:
                await old.close()
            try:
                conn = await self._reconnect(reason, lost)
            finally:
                if old is not None and hold:
                    await old.close()
            self._hint_s = None
            if conn is None:
                return
            # Until the replay is done, pumps wait (_usable): utterances must be
            # created on the new connection in their original order.
            self._replaying = asyncio.current_task()
            self._failing = None  # from here a loss of the new connection starts the next failover
            self._conn, self._ready, self._by_wire = conn, conn.ready, {}
            if not self._utts:
                self._retry.progress()
            await self._replay(conn, reason)
        finally:
            if self._failing is asyncio.current_task():
                self._failing = None
            if self._replaying is asyncio.current_task():
                self._replaying = None
            self._changed.set()
            self._progress.set()

    async def _reconnect(self, reason: str, lost: ConnectionLost | None) -> Connection | None:
        """A new connection, configured as this session was; None: gave up."""
        why: KokorodError | None = lost
        several = len(self._retry.urls) > 1
        while not self._retry.exhausted(self.policy):
            hint_s = why.retry_after_s if isinstance(why, DaemonBusy) else self._hint_s  # 503's Retry-After
            delay_s = self.policy.delay_s(self._retry.attempts, several, reason == "overloaded" or hint_s is not None,
                                          self._retry.rng, hint_s)
            url = self._retry.next_url() if several else self._retry.url
            self._retry.fail()
            await asyncio.sleep(delay_s)
            try:
                conn = await Connection.open(url, *self._open_args, self._on_event, self._on_closed)
            except InputError as exc:
                self._give_up(ConnectionLost(exc.message, exc.fix))
                return None
            except KokorodError as exc:
                why = exc
                log.info("reconnecting to %s failed: %s", url, exc.message)
                continue
            try:
                if self._config:
                    await asyncio.wait_for(conn.configure(Config(**self._config)), self._open_args[2])
                return conn
            except KokorodServerError as exc:  # that daemon differs (a voice it lacks); go on without
                log.warning("%s did not take the session's configuration: %s", url, exc.message)
                return conn
            except (KokorodError, asyncio.TimeoutError) as exc:
                why = exc if isinstance(exc, KokorodError) else ConnectionLost(f"{url} did not answer config")
                await conn.close()
            except BaseException:  # cancelled (close()): leave no connection behind
                await conn.close()
                raise
        first = f"{lost.message}; " if lost is not None else ""
        last = f" (last: {why.message})" if why is not None and why is not lost else ""
        self._give_up(ConnectionLost(f"{first}gave up reconnecting after {self._retry.attempts} attempts{last}",
                                     "are the daemons running? retry later"))
        return None

    async def _replay(self, conn: Connection, reason: str) -> None:
        """Create every open utterance on ``conn`` with its unheard text, in order."""
        for utt in list(self._utts.values()):
            if conn is not self._conn:
                return  # lost again: the next failover replays
            async with utt.lock:
                if utt.uid in self._utts and self._attach(utt, conn, reason):
                    try:
                        await utt.send_next(conn)
                    except ConnectionLost:
                        return
        for utt in list(self._utts.values()):
            if utt.conn is conn and (utt.sent < len(utt.tracker.text) or utt.tracker.final != utt.final_sent):
                self._spawn(self._pump(utt))

    def _attach(self, utt: OpenUtterance, conn: Connection, reason: str) -> bool:
        """Give ``utt`` a wire id on ``conn`` starting where the listener is; False
        when nothing is left to speak (it ends here, with a Done of our own)."""
        point = utt.tracker.resume_point()
        resuming = utt.wire is not None
        utt.tracker.start_segment(point)
        wire = f"{utt.uid[:118]}#{utt.tracker.segments - 1}" if resuming else utt.uid
        utt.conn, utt.wire, utt.created, utt.final_sent = conn, wire, False, False
        utt.sent, utt.counts = point.source_offset, [0, 0]
        self._by_wire[wire] = utt
        if not resuming:
            return True
        log.info("utterance %s resumes on %s at %.2f s (%s)", utt.uid, conn.url, point.at_s, reason)
        if point.final and utt.tracker.has_audio and not speakable(point.text):
            self._deliver(utt.uid, Done(utt.uid, point.at_s, point.at_samples))
            return False
        if utt.tracker.delivered_events:
            utt.resumed = Resumed(utt.uid, point.at_s, conn.url, point.word_index, point.source_offset, reason)
        return True
