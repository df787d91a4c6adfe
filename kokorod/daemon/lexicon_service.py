"""The daemon's lexicon file: loaded at start, swapped on SIGHUP.

``install_lexicon(daemon)`` (after ``Daemon.load``) and ``reload_lexicon(daemon)``
(the SIGHUP handler's work) put ``daemon.config.lexicon_path`` into the G2P
bank every engine worker shares (``G2PBank.lexicons.file``). The swap is one
attribute assignment: a synthesis in flight finishes with the lexicon it
started with, the next one uses the new file, and no stream is interrupted.
An invalid new file keeps the old lexicon and logs why.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from kokorod.daemon.chunk_cache import lexicon_fingerprint
from kokorod.errors import KokorodError
from kokorod.text.lexicon import LexiconError, load_lexicon_file

log = logging.getLogger("kokorod.lexicon")


def _bank(daemon: Any) -> Any:
    services = getattr(daemon, "services", None)
    synth = services.synth if services is not None else getattr(daemon, "synth", None)
    if synth is None:
        raise RuntimeError("the daemon has no synthesizer yet (call after Daemon.load)")
    return synth.g2p


def install_lexicon(daemon: Any) -> None:
    """Load ``daemon.config.lexicon_path`` (if set) into the shared G2P bank.

    Raises ``KokorodError`` for an invalid file (the CLI prints it and exits 2;
    ``--lexicon`` already checked the file while parsing arguments)."""
    path = getattr(daemon.config, "lexicon_path", None)
    if not path:
        return
    try:
        lexicon = load_lexicon_file(path)
    except LexiconError as exc:
        raise KokorodError(exc.message, "fix the entry, or start without --lexicon") from None
    lexicon_fingerprint(lexicon)  # before the first chunk is keyed by it
    bank = _bank(daemon)
    bank.lexicons.file, bank.lexicons.file_path = lexicon, path
    log.info("lexicon %s: %d entries", path, len(lexicon),
             extra={"event": "lexicon", "fields": {"path": path, "entries": len(lexicon)}})


def reload_lexicon_now(daemon: Any) -> bool:
    """Re-read the lexicon file (blocking: file I/O and validation). True if the
    new file is in use; False (old lexicon kept, reason logged) if it is invalid."""
    path = getattr(daemon.config, "lexicon_path", None)
    if not path:
        log.info("SIGHUP: no --lexicon file to reload")
        return False
    try:
        lexicon = load_lexicon_file(path)
    except LexiconError as exc:
        log.error("lexicon reload failed, keeping the previous lexicon: %s", exc.message,
                  extra={"event": "lexicon_reload_failed", "fields": {"path": path, "error": exc.message}})
        return False
    lexicon_fingerprint(lexicon)  # here, on this thread: the chunk cache keys by it on the loop
    bank = _bank(daemon)
    bank.lexicons.file, bank.lexicons.file_path = lexicon, path
    log.info("lexicon reloaded from %s: %d entries", path, len(lexicon),
             extra={"event": "lexicon_reloaded", "fields": {"path": path, "entries": len(lexicon)}})
    return True


async def reload_lexicon(daemon: Any) -> bool:
    """``reload_lexicon_now`` off the event loop (a 50,000-entry file takes a
    moment to validate); what the SIGHUP handler should schedule."""
    return await asyncio.to_thread(reload_lexicon_now, daemon)


def on_sighup(daemon: Any) -> None:
    """``loop.add_signal_handler(signal.SIGHUP, on_sighup, daemon)``."""
    task = asyncio.ensure_future(reload_lexicon(daemon))
    _PENDING.add(task)
    task.add_done_callback(_PENDING.discard)


_PENDING: set[asyncio.Future[bool]] = set()
