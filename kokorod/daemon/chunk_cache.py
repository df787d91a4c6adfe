"""A bounded LRU cache of rendered chunks: repeated phrases start at once.

On one machine the model's output is deterministic: the same spoken text,
voice, speed, language, lexicons and engine build give the same samples. So a
segment the daemon has rendered before (a greeting, an IVR prompt, an LLM's
"Sure!") is served from here, on the event loop, without running the engine
or waiting in the scheduler's queue.

The key holds everything ``render_segment`` reads: the spoken text and its
spoken -> written spans (the word events' text), the seam (the natural pause
after the chunk, which depends on the boundary and on whether the chunk is the
utterance's last), voice (a blend is its spec string), speed, language, a
content fingerprint of each lexicon layer (the session's, the daemon's file,
the built-in one) and the engine's identity. An engine without a known
identity (the torch engine, test fakes) gets no cache at all.

Sans-I/O and single-threaded: every call comes from the event loop.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from kokorod.speech.render import Rendered, seam_kind
from kokorod.text.languages import Language
from kokorod.text.segmenter import Segment
from kokorod.speech.chunk import SpeechChunk

log = logging.getLogger("kokorod.daemon.chunk_cache")

# 32 MiB holds ~350 s of 24 kHz float32 audio: a hundred or more short prompts
# (a 2 s "Sure, one moment." is ~190 kB) for under a tenth of the daemon's
# ~430 MB resident size (docs/operations.md, Memory); a larger cache mostly
# fills with long one-off answers, which are rarely asked for again.
DEFAULT_CACHE_MB = 32.0
# Held besides the samples, per entry: the key (its text, spans, fingerprints),
# the Rendered/SpeechChunk objects, the array header and the OrderedDict slot.
# tracemalloc: put() allocates 0.6-0.9 kB beyond the samples (1-50 words; the
# key and Word objects, allocated before, not counted); the estimate also
# counts those (tests/unit/daemon/test_chunk_cache.py keeps it above the measurement).
ENTRY_OVERHEAD_BYTES = 2048
# Per word event: a Word (dataclass, two ints) and its text.
WORD_OVERHEAD_BYTES = 160
_FINGERPRINTS_KEPT = 64  # lexicon objects whose fingerprint is remembered


@dataclass(frozen=True)
class ChunkKey:
    """Everything that changes a rendered chunk's samples, words or warnings."""

    spoken: str
    spans: tuple[tuple[int, int, str], ...]  # (spoken_start, spoken_end, written)
    seam: str            # pause kind after the audio; "none" for the last chunk or before a <break/>
    voice: str           # a name or a blend spec
    speed: float
    lang: str            # language code
    lexicons: tuple[str, str, str]  # fingerprints: session, daemon file, built-in
    engine: str          # engine identity (engine_identity)


@dataclass(frozen=True)
class CacheStats:
    hits: int = 0
    misses: int = 0
    evictions: int = 0
    entries: int = 0
    bytes_held: int = 0
    max_bytes: int = 0


_memo_lock = threading.Lock()
# id(lexicon) -> (lexicon, fingerprint). Holding the object keeps its id from
# being reused while it is remembered; Lexicons are immutable, replaced whole.
_fingerprints: "OrderedDict[int, tuple[Any, str]]" = OrderedDict()


def lexicon_fingerprint(lexicon: Any) -> str:
    """A digest of a lexicon layer's entries ("-" for none). Remembered per
    object: a 50,000-entry file is hashed once (on the thread that loads it,
    see kokorod.daemon.lexicon_service), not per chunk on the event loop."""
    if lexicon is None or not getattr(lexicon, "entries", None):
        return "-"
    with _memo_lock:
        known = _fingerprints.get(id(lexicon))
        if known is not None and known[0] is lexicon:
            _fingerprints.move_to_end(id(lexicon))
            return known[1]
    entries = {lang: dict(words) for lang, words in lexicon.entries.items()}
    text = json.dumps(entries, sort_keys=True, ensure_ascii=False)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]
    with _memo_lock:
        _fingerprints[id(lexicon)] = (lexicon, digest)
        while len(_fingerprints) > _FINGERPRINTS_KEPT:
            _fingerprints.popitem(last=False)
    return digest


def engine_identity(engine: Any) -> str | None:
    """What makes this engine's audio what it is, or None: do not cache.

    ONNX: the optimised-graph cache's key (model sha256, graph edit,
    dequantisation, onnxruntime version, CPU instruction sets) plus the
    intra-op thread count (a different split of the work may round
    differently). Blocking when the graph cache is off (hashes the model
    file): call it off the event loop. The split engine (openvino-split): its
    front part's key, plus its back part's (OpenVINO IR), OpenVINO's version
    and the inference precision. The torch engine gets None: on a GPU its
    kernels need not be deterministic, and its weights have no cheap digest."""
    name = getattr(engine, "name", None)
    if name not in ("onnx", "openvino-split"):
        return None
    graph_cache = getattr(engine, "graph_cache", None)
    if graph_cache is not None:
        key = dict(graph_cache.key)
    else:
        from kokorod.assets.model import sha256_file
        from kokorod.engine.onnx_graph import graph_key

        key = graph_key(sha256_file(engine.model_path), engine.dequantize, getattr(engine, "kernels", "export"))
    key["threads"] = str(getattr(engine, "threads", None))
    # Trimmed decoding (kokorod.engine.trim) changes the audio at the edges;
    # its context is a run-time setting, not part of the graph's key.
    key["trim"] = (f"{getattr(engine, 'trim_context', None)}+{getattr(engine, 'trim_trail', None)}:"
                   f"{getattr(engine, 'trim_cut', None)}")
    if name == "openvino-split":
        from importlib.metadata import version

        key["back"] = json.dumps(engine.back_graph.key, sort_keys=True)
        key["openvino"] = version("openvino")
        key["precision"] = str(engine.precision)
    return f"{name}:" + hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]


def entry_bytes(key: ChunkKey, rendered: Rendered) -> int:
    """An entry's cost against the bound: its samples plus an overhead estimate."""
    chunk = rendered.chunk
    text_bytes = len(key.spoken.encode("utf-8")) + sum(len(w) for _, _, w in key.spans)
    words_bytes = sum(WORD_OVERHEAD_BYTES + len(w.text) for w in chunk.words)
    words_bytes += sum(WORD_OVERHEAD_BYTES + len(w) for w in rendered.unspeakable)
    return int(chunk.audio.nbytes) + text_bytes + words_bytes + ENTRY_OVERHEAD_BYTES


class Lookup:
    """One segment's lookup: the hit, or how to store the miss once rendered."""

    def __init__(self, cache: "ChunkCache", key: ChunkKey, daemon_lexicons: Any, file_layer: Any) -> None:
        self.cache, self.key = cache, key
        self._daemon_lexicons, self._file_layer = daemon_lexicons, file_layer
        self.rendered = cache.get(key)

    def store(self, rendered: Rendered) -> None:
        # A SIGHUP may have swapped the daemon's lexicon file while the job ran
        # (the job then used the new one): that audio does not belong to this key.
        if self._daemon_lexicons is not None and self._daemon_lexicons.file is not self._file_layer:
            return
        self.cache.put(self.key, rendered)


class ChunkCache:
    """Rendered chunks by ``ChunkKey``, least recently used evicted first,
    bounded by ``max_bytes`` (see ``entry_bytes``)."""

    def __init__(self, max_bytes: int, engine: str) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must be >= 0")
        self.max_bytes = max_bytes
        self.engine = engine
        self._entries: OrderedDict[ChunkKey, tuple[Rendered, int]] = OrderedDict()
        self.bytes_held = 0
        self.hits = self.misses = self.evictions = 0

    def __len__(self) -> int:
        return len(self._entries)

    def rekey(self, engine: str) -> None:
        """Another engine from now on (``--engine auto`` switched after measuring):
        every entry is the old engine's audio, so all go. A render in flight
        may still put one under the old key; no lookup reaches it, and the
        bound evicts it in time."""
        if engine == self.engine:
            return
        self.engine = engine
        self._entries.clear()
        self.bytes_held = 0

    def stats(self) -> CacheStats:
        return CacheStats(self.hits, self.misses, self.evictions, len(self._entries), self.bytes_held, self.max_bytes)

    def key(self, segment: Segment, *, voice: str, speed: float, lang: Language, last: bool,
            session_lexicon: Any = None, daemon_lexicons: Any = None) -> ChunkKey:
        return ChunkKey(
            spoken=segment.spoken,
            spans=tuple((r.spoken_start, r.spoken_end, r.written) for r in segment.spans),
            seam=seam_kind(segment, last) or "none",
            voice=voice,
            speed=float(speed),
            lang=lang.code,
            lexicons=(lexicon_fingerprint(session_lexicon),
                      lexicon_fingerprint(getattr(daemon_lexicons, "file", None)),
                      lexicon_fingerprint(getattr(daemon_lexicons, "builtin", None))),
            engine=self.engine,
        )

    def lookup(self, segment: Segment, *, voice: str, speed: float, lang: Language, last: bool,
               session_lexicon: Any = None, daemon_lexicons: Any = None) -> Lookup:
        """Key ``segment`` as ``render_segment`` would render it, and look it up.
        ``daemon_lexicons``: the G2P bank's ``DaemonLexicons`` (None: no such layers)."""
        file_layer = getattr(daemon_lexicons, "file", None)
        key = self.key(segment, voice=voice, speed=speed, lang=lang, last=last,
                       session_lexicon=session_lexicon, daemon_lexicons=daemon_lexicons)
        return Lookup(self, key, daemon_lexicons, file_layer)

    def get(self, key: ChunkKey) -> Rendered | None:
        """A fresh Rendered sharing the cached (read-only) samples, or None."""
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        cached = entry[0]
        chunk = SpeechChunk(cached.chunk.audio, list(cached.chunk.words), cached.chunk.sample_rate,
                            list(cached.chunk.unspeakable))
        return Rendered(chunk, 0.0, list(cached.unspeakable))  # no engine time spent

    def put(self, key: ChunkKey, rendered: Rendered) -> None:
        """Keep a copy of ``rendered`` (its samples made read-only), evicting the
        least recently used entries to stay within ``max_bytes``. An entry
        larger than the whole bound is not kept."""
        size = entry_bytes(key, rendered)
        if size > self.max_bytes:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self.bytes_held -= old[1]
        audio = np.array(rendered.chunk.audio, dtype=np.float32, copy=True)
        audio.setflags(write=False)  # shared by every hit: nobody may write to it
        chunk = SpeechChunk(audio, list(rendered.chunk.words), rendered.chunk.sample_rate,
                            list(rendered.chunk.unspeakable))
        self._entries[key] = (Rendered(chunk, rendered.synth_s, list(rendered.unspeakable)), size)
        self.bytes_held += size
        while self.bytes_held > self.max_bytes:
            _, (_, evicted) = self._entries.popitem(last=False)
            self.bytes_held -= evicted
            self.evictions += 1


def build_chunk_cache(cache_mb: float, engine: Any) -> ChunkCache | None:
    """The daemon's cache, or None when ``cache_mb`` is 0 or the engine has
    no identity. Blocking (see ``engine_identity``): call it off the loop."""
    if cache_mb <= 0:
        return None
    identity = engine_identity(engine)
    if identity is None:
        log.info("chunk cache off: the %s engine has no identity to key it by", getattr(engine, "name", "?"))
        return None
    return ChunkCache(int(cache_mb * 1024 * 1024), identity)
