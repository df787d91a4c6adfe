"""The engine contract: phoneme ids + style in, audio + per-phoneme durations out.

Everything above this layer (G2P, word timing, chunking, streaming) is shared by
all engines, so an engine only has to run the acoustic model.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

# The model's facts live in the leaf kokorod.model_facts; re-exported for engines.
from kokorod.model_facts import MAX_PHONEMES, SAMPLE_RATE, SAMPLES_PER_FRAME, SPEED_MAX, SPEED_MIN, FloatAudio  # noqa: F401


class SynthesisCancelled(Exception):
    """Raised by an engine when its CancelToken fired while it was running."""


class CancelToken:
    """A cancellation flag that can reach into work running on another thread.

    Engines register a hook (for ONNX: ``RunOptions.terminate = True``) while a
    model call is in flight; ``cancel()`` sets the flag and fires the hooks, so a
    run that already started stops instead of finishing uselessly.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._hooks: list[Callable[[], None]] = []

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def cancel(self) -> None:
        with self._lock:
            self._event.set()
            hooks = list(self._hooks)
        for hook in hooks:
            hook()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise SynthesisCancelled()

    def add_hook(self, hook: Callable[[], None]) -> None:
        """Register ``hook``; it runs at once if the token is already cancelled."""
        with self._lock:
            if not self._event.is_set():
                self._hooks.append(hook)
                return
        hook()

    def remove_hook(self, hook: Callable[[], None]) -> None:
        with self._lock:
            if hook in self._hooks:
                self._hooks.remove(hook)


@dataclass(frozen=True)
class EngineOutput:
    """One model run. ``durations`` has one entry per input id (BOS and EOS included)
    and ``len(audio) == durations.sum() * SAMPLES_PER_FRAME`` for Kokoro."""

    audio: FloatAudio
    durations: npt.NDArray[np.int64]


@runtime_checkable
class Engine(Protocol):
    """An acoustic model. Implementations must be safe to call from one worker
    thread while ``CancelToken.cancel`` is called from another."""

    name: str
    sample_rate: int
    vocab: dict[str, int]

    def run(
        self,
        token_ids: list[int],
        style: npt.NDArray[np.float32],
        speed: float,
        cancel: CancelToken | None = None,
    ) -> EngineOutput:
        """Synthesize ``token_ids`` (already wrapped in BOS/EOS zeros).

        ``style`` is the (1, 256) voice row for this phoneme count. Raises
        SynthesisCancelled if ``cancel`` fires before or during the run.
        """
        ...
