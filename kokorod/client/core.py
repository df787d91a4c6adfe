"""``KokorodClient``: utterances, streams and failover over a ``Connection``.

Each client-facing utterance (``OpenUtterance``) keeps everything sent for it in a
``ResumeTracker``. Its text is sent by a *pump* (``_pump``) that always sends
``tracker.text[sent:]`` on the current connection, so a fragment given while a
connection is being replaced is simply sent on the new one. On failover every
open utterance is attached to the new connection under a fresh daemon-side id
("wire" id), created there with the text not heard yet, in the order the
utterances were created; events of a wire id are remapped by the tracker onto
the utterance's own id and continuous timeline before anyone sees them.
That failover is in ``failing_over`` (``FailingOver``, this class's base).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any, Sequence

from kokorod.client.connection import Connecting, Connection, ConnectionLost, check_message
from kokorod.client.failing_over import FailingOver
from kokorod.client.failover import FailoverPolicy, RetryState
from kokorod.client.outgoing import OpenUtterance, fragments_of, visible_chars
from kokorod.client.session import Fragments
from kokorod.errors import InputError, KokorodError
from kokorod.protocol.messages import (
    Audio, Cancel, Cancelled, Chunk, Config, Configured, Error, ErrorCode, Ready, ServerEvent, Speak,
)

log = logging.getLogger("kokorod.client")
DEFAULT_URL = "ws://127.0.0.1:8765/v1/stream"


class KokorodClient(FailingOver):
    """A session with a daemon that survives losing its connection. Create it
    with ``connect()``."""

    def __init__(self, urls: Sequence[str], token: str | None, encoding: str, open_timeout: float,
                 failover: bool, policy: FailoverPolicy) -> None:
        super().__init__()
        self._open_args = (token, encoding, open_timeout)
        self.failover = failover
        self.policy = policy
        self._retry = RetryState(list(urls))
        self._conn: Connection | None = None
        self._ready: Ready | None = None
        self._utts: dict[str, OpenUtterance] = {}       # open utterances, in creation order
        self._by_wire: dict[str, OpenUtterance] = {}    # the current connection's ids
        self._config: dict[str, Any] = {}      # every field configured, replayed on a new connection
        self._failing: asyncio.Task[None] | None = None
        self._replaying: asyncio.Task[Any] | None = None   # the failover creating utterances on a new connection
        self._tasks: set[asyncio.Task[None]] = set()
        self._hint_s: float | None = None       # the daemon's retry-after hint for the next attempt

    # -- connecting ----------------------------------------------------------

    @staticmethod
    def connect(url: str | Sequence[str] = DEFAULT_URL, token: str | None = None,
                encoding: str = "msgpack", open_timeout: float = 5.0, failover: bool = True,
                max_retries: int = 4, retry_budget_s: float = 30.0, backoff_base_s: float = 0.2,
                backoff_max_s: float = 5.0) -> "Connecting[KokorodClient]":
        """Await it, or use it with ``async with``. Several URLs are tried in
        order; see docs/client.md for failover."""
        urls = [url] if isinstance(url, str) else list(url)
        if not urls:
            raise InputError("no daemon URL given")
        policy = FailoverPolicy(max_retries, retry_budget_s, backoff_base_s, backoff_max_s)
        return Connecting(lambda: KokorodClient._open(urls, token, encoding, open_timeout, failover, policy))

    @classmethod
    async def _open(cls, urls: list[str], token: str | None, encoding: str, open_timeout: float,
                    failover: bool, policy: FailoverPolicy) -> "KokorodClient":
        client = cls(urls, token, encoding, open_timeout, failover, policy)
        errors: list[KokorodError] = []
        for i, url in enumerate(urls):
            try:
                conn = await Connection.open(url, token, encoding, open_timeout, client._on_event, client._on_closed)
            except InputError:
                raise
            except KokorodError as exc:
                errors.append(exc)
                continue
            client._retry.index = i
            client._use(conn)
            return client
        # The most useful failure: a refused token says what to fix.
        from kokorod.client.connection import AuthenticationFailed
        raise next((e for e in errors if isinstance(e, AuthenticationFailed)), errors[-1])

    def _use(self, conn: Connection) -> None:
        self._conn, self._ready = conn, conn.ready
        self._by_wire = {}
        self._changed.set()
        self._progress.set()

    @property
    def url(self) -> str:
        return self._conn.url if self._conn is not None else self._retry.url

    @property
    def ready(self) -> Ready:
        assert self._ready is not None
        return self._ready

    @property
    def codec(self) -> Any:
        return self._conn.codec if self._conn is not None else None

    async def close(self) -> None:
        self._closing = True
        for task in (*self._tasks, *([self._failing] if self._failing else [])):
            task.cancel()
        await asyncio.gather(*self._tasks, *([self._failing] if self._failing else []), return_exceptions=True)
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()  # its reader ends every stream via _on_closed
        self._finish()

    async def _usable(self) -> Connection:
        while True:
            if self._lost is not None:
                raise self._lost
            if self._closing:
                raise ConnectionLost("the client is closed")
            conn = self._conn
            if conn is not None and not conn.done and self._replaying is None:
                return conn
            if conn is None and self._failing is None:  # dropped while idle: reconnect now
                self._start_failover("connection_lost")
            self._changed.clear()
            await self._changed.wait()

    # -- events from the connection -------------------------------------------

    def _on_event(self, conn: Connection, event: ServerEvent) -> None:
        if conn is not self._conn:
            return
        wire: str | None = getattr(event, "utterance", None)
        utt = self._by_wire.get(wire) if wire is not None else None
        if utt is None:  # session-level, or of an utterance that ended (a late error): listeners only
            self._broadcast(event)
            return
        if (isinstance(event, Error) and event.code == ErrorCode.OVERLOADED and self.failover
                and not utt.tracker.has_audio and not self._retry.exhausted(self.policy)):
            log.info("utterance %s refused as overloaded by %s; retrying", utt.uid, conn.url)
            # protocol v1's error event has no retry hint; a later one may (retry_after_s)
            self._hint_s = getattr(event, "retry_after_s", None)
            self._start_failover("overloaded")
            return
        if isinstance(event, Audio) or (isinstance(event, Error) and event.code == ErrorCode.OVERLOADED):
            self._retry.progress()  # audio, or retries given up for this one: the next utterance starts afresh
        elif isinstance(event, Chunk):
            utt.counts[1] += visible_chars(event.text)
            self._progress.set()
        if utt.resumed is not None:
            self._deliver(utt.uid, utt.resumed)
            utt.resumed = None
        self._deliver(utt.uid, utt.tracker.observe(event))

    def _on_ended(self, uid: str) -> None:
        utt = self._utts.pop(uid, None)
        if utt is not None and utt.wire is not None:
            self._by_wire.pop(utt.wire, None)
        self._progress.set()

    def _on_closed(self, conn: Connection, lost: ConnectionLost | None) -> None:
        if conn is not self._conn:
            return
        if lost is None or self._closing:
            self._finish()
        elif not self.failover:
            self._give_up(lost)
        elif self._utts:
            log.warning("%s; failing over", lost.message)
            self._start_failover("connection_lost", lost)
        else:
            self._conn = None  # nothing in flight: reconnect when next needed

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro, name="kokorod-client-sender")
        self._tasks.add(task)
        task.add_done_callback(self._reaped)

    def _reaped(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("background send ended: %s", task.exception())

    # -- sending -------------------------------------------------------------

    async def _pump(self, utt: OpenUtterance) -> None:
        """Send all of ``utt``'s text given so far, across failovers."""
        while utt.uid in self._utts:
            conn = await self._usable()
            try:
                async with utt.lock:
                    if utt.uid not in self._utts:
                        return
                    if utt.conn is not conn and not self._attach(utt, conn, "connection_lost"):
                        return
                    sent = await utt.send_next(conn)
            except ConnectionLost:
                if not self.failover or self._lost is not None:
                    raise
                await conn.wait_done()
                continue
            if not sent:
                return
            await self._hold_back(utt)

    async def _hold_back(self, utt: OpenUtterance) -> None:
        """Wait while this utterance's unspoken text is near the daemon's limit."""
        window = self.ready.limits.max_text_chars // 2
        while utt.counts[0] - utt.counts[1] > window and utt.uid in self._utts and self._lost is None:
            self._progress.clear()
            await self._progress.wait()

    async def configure(self, **fields: Any) -> Configured:
        """Set session defaults (voice, speed, format, sample_rate, frame_ms,
        on_new_utterance, lang, lexicon); returns the effective configuration.
        They are set again on a connection failover moves to."""
        conn = await self._usable()
        configured = await conn.configure(Config(**fields))
        self._config.update({k: v for k, v in fields.items() if v is not None})
        return configured

    async def speak(self, text: Fragments, utterance: str | None = None, voice: str | None = None,
                    speed: float | None = None, final: bool = True, mode: str | None = None,
                    lang: str | None = None, priority: str | None = None) -> str:
        """Speak ``text`` (a string, or an (async) iterable of fragments sent as they
        come); returns the utterance id. With ``final=False`` more text may follow
        in later ``speak`` calls with the same id. ``lang`` (e.g. "es") overrides
        the voice's language. ``priority="background"`` is for long work nobody
        listens to live (a book to a file): the daemon never refuses it for
        capacity and runs it on engine time no live stream needs."""
        uid = utterance or "u-" + uuid.uuid4().hex[:12]
        utt = self._utts.get(uid)
        if uid in self._ended or (utt is not None and utt.tracker.final):
            raise InputError(f"utterance {uid!r} is finished; use a new id")
        if self._lost is not None:
            raise self._lost
        if utt is None:
            check_message(Speak(uid, "", voice, speed, False, mode, lang, priority=priority))  # type: ignore[arg-type]
            rate = int(self._config.get("sample_rate") or self.ready.sample_rate)
            utt = self._utts[uid] = OpenUtterance(uid, voice, speed, mode, lang, rate, priority)
            self._streams.setdefault(uid, asyncio.Queue())  # buffer from the first event on
        try:
            if isinstance(text, str):
                utt.tracker.add_text(text, final)
                await self._pump(utt)
            else:
                async for piece in fragments_of(text):
                    if uid in self._ended:  # cancelled or barged in: stop consuming the producer
                        return uid
                    if piece:
                        utt.tracker.add_text(piece)
                        await self._pump(utt)
                if final and uid not in self._ended:
                    utt.tracker.add_text("", True)
                    await self._pump(utt)
        except InputError:
            if not utt.created and utt.wire in (None, uid):  # refused locally before anything went out
                self._utts.pop(uid, None)
                self._streams.pop(uid, None)
            raise
        return uid

    async def cancel(self, utterance: str | None = None, all: bool = False) -> None:
        """Stop ``utterance``, or what is speaking now, or (``all=True``) everything."""
        if self._lost is not None:
            raise self._lost
        conn = self._conn
        live = conn is not None and not conn.done
        if live and self._replaying is None:
            assert conn is not None
            utt = self._utts.get(utterance) if utterance else None
            await conn.send(Cancel(utt.wire if utt is not None and utt.wire else utterance, all))
            return
        # Reconnecting: end them here; one already re-created on the new daemon is cancelled there too.
        targets = list(self._utts) if all else [utterance] if utterance else list(self._utts)[:1]
        for uid in targets:
            utt = self._utts.get(uid)
            if utt is None:
                continue
            async with utt.lock:  # a replay creating it right now finishes first
                if live and conn is not None and utt.conn is conn and utt.created and utt.wire:
                    try:
                        await conn.send(Cancel(utt.wire))
                    except ConnectionLost:
                        pass
            if uid in self._utts:
                self._deliver(uid, Cancelled(uid, "cancel"))
