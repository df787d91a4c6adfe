"""The rendered-chunk cache: byte bound, LRU order, and a key that changes with
everything that changes a chunk's audio."""

from __future__ import annotations

import dataclasses
import tracemalloc
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from kokorod.daemon.chunk_cache import (
    ENTRY_OVERHEAD_BYTES, ChunkCache, ChunkKey, build_chunk_cache, engine_identity, entry_bytes, lexicon_fingerprint,
)
from kokorod.speech.render import Rendered
from kokorod.metrics import Metrics
from kokorod.text import languages
from kokorod.text.lexicon import DaemonLexicons, Lexicon
from kokorod.text.normalize import Replacement
from kokorod.text.segmenter import Segment
from kokorod.speech.chunk import SpeechChunk, Word

EN = languages.resolve("en-us")


def _segment(spoken: str = "Hello there.", boundary: str = "sentence", spans: tuple[Any, ...] = ()) -> Segment:
    return Segment(0, spoken, spoken, boundary, spans)


def _rendered(samples: int = 2400, words: tuple[str, ...] = ("Hello",), seed: int = 0) -> Rendered:
    audio = np.random.default_rng(seed).uniform(-0.5, 0.5, samples).astype(np.float32)
    n = max(1, samples // max(1, len(words)))
    return Rendered(SpeechChunk(audio, [Word(w, i * n, (i + 1) * n) for i, w in enumerate(words)]), 0.25, ["#x"])


def _key(cache: ChunkCache, text: str) -> ChunkKey:
    return cache.key(_segment(text), voice="af_heart", speed=1.0, lang=EN, last=False)


def test_a_hit_is_bit_identical_and_costs_no_engine_time() -> None:
    cache = ChunkCache(10 * 2**20, "engine")
    key = _key(cache, "Hello there.")
    assert cache.get(key) is None
    original = _rendered(24000, ("Hello", "there"))
    cache.put(key, original)
    hit = cache.get(key)
    assert hit is not None
    assert hit.chunk.audio.tobytes() == original.chunk.audio.tobytes()
    assert hit.chunk.words == original.chunk.words and hit.unspeakable == original.unspeakable
    assert hit.synth_s == 0.0
    assert (cache.hits, cache.misses) == (1, 1)


def test_cached_samples_are_shared_read_only_and_copied_in() -> None:
    cache = ChunkCache(10 * 2**20, "engine")
    key = _key(cache, "Hello there.")
    original = _rendered()
    expected = original.chunk.audio.copy()
    cache.put(key, original)
    original.chunk.audio[:] = 0.0  # the caller's array is its own
    original.chunk.words.clear()
    hit = cache.get(key)
    assert hit is not None and np.array_equal(hit.chunk.audio, expected) and hit.chunk.words
    with pytest.raises(ValueError):
        hit.chunk.audio[0] = 1.0
    hit.chunk.words.clear()  # a hit's lists are its own too
    again = cache.get(key)
    assert again is not None and again.chunk.words


def test_bounded_in_bytes_least_recently_used_out() -> None:
    one = entry_bytes(ChunkKey("a", (), "none", "v", 1.0, "en-us", ("-", "-", "-"), "e"), _rendered(24000))
    cache = ChunkCache(3 * one + one // 2, "e")  # room for three entries
    keys = [_key(cache, text) for text in ("a", "b", "c", "d")]
    for key in keys[:3]:
        cache.put(key, _rendered(24000))
    assert len(cache) == 3 and cache.bytes_held <= cache.max_bytes
    assert cache.get(keys[0]) is not None  # "a" is now the most recently used
    cache.put(keys[3], _rendered(24000))
    assert cache.bytes_held <= cache.max_bytes and cache.evictions == 1
    assert cache.get(keys[1]) is None  # "b" was the least recently used
    assert all(cache.get(k) is not None for k in (keys[0], keys[2], keys[3]))
    assert cache.bytes_held == sum(entry_bytes(k, _rendered(24000)) for k in (keys[0], keys[2], keys[3]))


def test_an_entry_larger_than_the_bound_is_not_kept_and_evicts_nothing() -> None:
    cache = ChunkCache(200_000, "e")
    small = _key(cache, "small")
    cache.put(small, _rendered(2400))
    cache.put(_key(cache, "huge"), _rendered(240_000))  # 960 kB of samples
    assert cache.get(small) is not None and len(cache) == 1 and cache.evictions == 0


def test_replacing_a_key_counts_its_bytes_once() -> None:
    cache = ChunkCache(10 * 2**20, "e")
    key = _key(cache, "same")
    cache.put(key, _rendered(2400))
    cache.put(key, _rendered(2400))
    assert len(cache) == 1 and cache.bytes_held == entry_bytes(key, _rendered(2400))


def test_entry_bytes_covers_samples_and_overhead() -> None:
    key = _key(ChunkCache(1, "e"), "Hello there.")
    rendered = _rendered(2400, ("Hello", "there"))
    assert entry_bytes(key, rendered) >= rendered.chunk.audio.nbytes + ENTRY_OVERHEAD_BYTES
    # The overhead estimate holds what an entry really allocates beyond its samples.
    cache = ChunkCache(10 * 2**20, "e")
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    cache.put(key, rendered)
    allocated = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert allocated - rendered.chunk.audio.nbytes <= entry_bytes(key, rendered) - rendered.chunk.audio.nbytes


def _lexicon(entries: dict[str, dict[str, str]]) -> Lexicon:
    return Lexicon(entries)


BASE = dict(segment=_segment("Call me at five.", "sentence", (Replacement(0, 4, "Call"),)), voice="af_heart",
            speed=1.0, lang=EN, last=False, session_lexicon=None,
            daemon_lexicons=DaemonLexicons(builtin=_lexicon({"en-us": {"json": "ʤˈeɪsɑn"}})))


@pytest.mark.parametrize("change", [
    {"segment": _segment("Call me at six.", "sentence", (Replacement(0, 4, "Call"),))},  # the spoken text
    {"segment": _segment("Call me at five.", "sentence", (Replacement(0, 4, "CALL"),))},  # a span's written text
    {"segment": _segment("Call me at five.", "sentence", (Replacement(0, 5, "Call"),))},  # a span's extent
    {"segment": _segment("Call me at five.", "sentence", ())},                            # no spans
    {"segment": _segment("Call me at five.", "clause", (Replacement(0, 4, "Call"),))},    # the seam's pause
    {"segment": _segment("Call me at five.", "break", (Replacement(0, 4, "Call"),))},     # a <break/> follows
    {"last": True},                                                                       # the last chunk: no pause
    {"voice": "af_bella"},
    {"voice": "af_heart:0.7,af_bella:0.3"},                                               # a blend
    {"speed": 1.25},
    {"lang": languages.resolve("en-gb")},
    {"session_lexicon": _lexicon({"en-us": {"five": "fˈIv"}})},
    {"daemon_lexicons": DaemonLexicons(builtin=BASE["daemon_lexicons"].builtin,           # type: ignore[attr-defined]
                                       file=_lexicon({"en-us": {"five": "fˈIv"}}))},
    {"daemon_lexicons": DaemonLexicons(builtin=_lexicon({"en-us": {"json": "ʤˈAsən"}}))},  # another built-in
])
def test_every_input_of_the_render_changes_the_key(change: dict[str, Any]) -> None:
    cache = ChunkCache(1, "engine-a")
    assert cache.key(**{**BASE, **change}) != cache.key(**BASE)  # type: ignore[arg-type]


def test_the_engine_identity_changes_the_key_and_equal_inputs_give_equal_keys() -> None:
    a, b = ChunkCache(1, "engine-a"), ChunkCache(1, "engine-b")
    assert a.key(**BASE) != b.key(**BASE)  # type: ignore[arg-type]
    same = {**BASE, "session_lexicon": _lexicon({"en-us": {"five": "fˈIv"}})}
    again = {**BASE, "session_lexicon": _lexicon({"en-us": {"five": "fˈIv"}})}  # another object, same content
    assert a.key(**same) == a.key(**again)  # type: ignore[arg-type]
    # The last chunk has no pause whatever its boundary, so these render alike.
    last_sentence = {**BASE, "last": True}
    last_final = {**BASE, "last": True, "segment": dataclasses.replace(BASE["segment"], boundary="final")}  # type: ignore[type-var]
    assert a.key(**last_sentence) == a.key(**last_final)  # type: ignore[arg-type]


def test_lexicon_fingerprint_follows_content() -> None:
    assert lexicon_fingerprint(None) == lexicon_fingerprint(Lexicon({})) == "-"
    one = lexicon_fingerprint(_lexicon({"en-us": {"nginx": "ˈɛnʤɪnˈɛks"}}))
    assert one == lexicon_fingerprint(_lexicon({"en-us": {"nginx": "ˈɛnʤɪnˈɛks"}}))
    assert one != lexicon_fingerprint(_lexicon({"en-gb": {"nginx": "ˈɛnʤɪnˈɛks"}}))
    assert one != lexicon_fingerprint(_lexicon({"en-us": {"nginx": "ˈɛnʤɪn"}}))


def test_a_lexicon_swapped_while_rendering_is_not_stored_under_the_old_key() -> None:
    cache = ChunkCache(10 * 2**20, "e")
    layers = DaemonLexicons(file=_lexicon({"en-us": {"five": "fˈIv"}}))
    lookup = cache.lookup(_segment(), voice="af_heart", speed=1.0, lang=EN, last=False, daemon_lexicons=layers)
    assert lookup.rendered is None
    layers.file = _lexicon({"en-us": {"five": "fˈaɪv"}})  # SIGHUP while the job ran
    lookup.store(_rendered())
    assert len(cache) == 0
    lookup = cache.lookup(_segment(), voice="af_heart", speed=1.0, lang=EN, last=False, daemon_lexicons=layers)
    lookup.store(_rendered())
    assert len(cache) == 1


def _onnx(threads: int | None = None, **key: str) -> Any:
    graph_key = {"model_sha256": "abc", "graph_edit": "1", "dequantize": "none", "onnxruntime": "1.20.0",
                 "optimization": "all", "cpu": "x86_64+avx2"}
    return SimpleNamespace(name="onnx", graph_cache=SimpleNamespace(key={**graph_key, **key}), threads=threads)


@pytest.mark.parametrize("change", [{"model_sha256": "abd"}, {"dequantize": "conv"}, {"onnxruntime": "1.21.0"},
                                    {"cpu": "x86_64+avx2+avx512f"}])
def test_engine_identity_follows_the_build(change: dict[str, str]) -> None:
    assert engine_identity(_onnx()) == engine_identity(_onnx())
    assert engine_identity(_onnx(**change)) != engine_identity(_onnx())
    assert engine_identity(_onnx(threads=1)) != engine_identity(_onnx(threads=2))


def test_the_split_engine_is_keyed_by_both_parts_and_its_precision(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata

    monkeypatch.setattr(importlib.metadata, "version", lambda name: "2026.4.1")

    def split(back: str = "b1", precision: str = "bf16") -> Any:
        engine = _onnx()
        engine.name, engine.back_graph, engine.precision = "openvino-split", SimpleNamespace(key={"k": back}), precision
        return engine

    assert engine_identity(split()) == engine_identity(split())
    assert engine_identity(split()) != engine_identity(_onnx())  # not int8's audio
    assert engine_identity(split(back="b2")) != engine_identity(split())
    assert engine_identity(split(precision="f32")) != engine_identity(split())


def test_no_identity_no_cache() -> None:
    assert engine_identity(SimpleNamespace(name="torch")) is None
    assert build_chunk_cache(32, SimpleNamespace(name="torch")) is None
    assert build_chunk_cache(0, _onnx()) is None  # --cache-mb 0: off
    cache = build_chunk_cache(1.5, _onnx())
    assert cache is not None and cache.max_bytes == 1536 * 1024


def test_metrics_read_the_cache_at_scrape_time() -> None:
    metrics = Metrics()
    assert b"kokorod_chunk_cache_hit_ratio NaN" in metrics.render()
    cache = ChunkCache(10 * 2**20, "e")
    metrics.chunk_cache.cache = cache
    key = _key(cache, "Hello")
    cache.get(key)
    cache.put(key, _rendered())
    cache.get(key)
    values = {name: float(value) for name, _, value in
              (line.partition(" ") for line in metrics.render().decode().splitlines() if not line.startswith("#"))}
    assert values["kokorod_chunk_cache_hits_total"] == 1 and values["kokorod_chunk_cache_misses_total"] == 1
    assert values["kokorod_chunk_cache_evictions_total"] == 0 and values["kokorod_chunk_cache_entries"] == 1
    assert values["kokorod_chunk_cache_bytes"] == cache.bytes_held > 0
    assert values["kokorod_chunk_cache_max_bytes"] == 10 * 2**20
    assert values["kokorod_chunk_cache_hit_ratio"] == 0.5


def test_cache_mb_flag() -> None:
    import argparse

    from kokorod.cli.serve import add_server_args
    from kokorod.config import ServerConfig

    parser = argparse.ArgumentParser()
    add_server_args(parser)
    assert parser.parse_args([]).cache_mb == ServerConfig.chunk_cache_mb == 32
    assert parser.parse_args(["--cache-mb", "0"]).cache_mb == 0  # off
    assert parser.parse_args(["--cache-mb", "0.5"]).cache_mb == 0.5
    for bad in ("-1", "inf", "nan", "lots"):
        with pytest.raises(SystemExit):
            parser.parse_args(["--cache-mb", bad])


def test_trimmed_decoding_is_part_of_the_engine_identity() -> None:
    from types import SimpleNamespace

    from kokorod.daemon.chunk_cache import engine_identity

    cache = SimpleNamespace(key={"model_sha256": "x"})
    full = SimpleNamespace(name="onnx", graph_cache=cache, threads=2, trim_context=None, trim_cut="decoder")
    trimmed = SimpleNamespace(name="onnx", graph_cache=cache, threads=2, trim_context=8, trim_cut="decoder")
    assert engine_identity(full) != engine_identity(trimmed)


def test_rekeyed_for_another_engine_it_starts_over() -> None:
    """--engine auto switched after measuring: int8's audio must not be served as fp32's."""
    cache = ChunkCache(10 * 2**20, "int8")
    old = _key(cache, "Hello there.")
    cache.put(old, _rendered())
    cache.rekey("int8")  # the same engine: nothing changes
    assert len(cache) == 1
    cache.rekey("fp32")
    new = _key(cache, "Hello there.")
    assert new != old and len(cache) == 0 and cache.bytes_held == 0
    assert cache.get(new) is None
    cache.put(old, _rendered())  # a render in flight under the old key: kept, never found by a new key
    assert cache.get(new) is None
