"""Running the tasks of one ``say`` or ``pipe``: the first failure stops the
others, Ctrl-C cleans up and exits 130, a closed stdout ends quietly; and the
moment first-audio latency is counted from."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any, Awaitable

from kokorod.cli.console import Console


async def interruptible(work: Awaitable[int], on_interrupt: Any, console: Console) -> int:
    """Run ``work``; on Ctrl-C (asyncio.run cancels the main task) clean up, then
    let the cancellation go on: asyncio.run turns it into KeyboardInterrupt, which
    the CLI reports as exit 130. A closed stdout ends quietly."""
    try:
        return await work
    except asyncio.CancelledError:
        await on_interrupt()
        console.end()
        raise
    except BrokenPipeError:
        await on_interrupt()
        # Point stdout at /dev/null so the interpreter's final flush does not complain.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


async def first_of(*tasks: "asyncio.Task[Any]") -> None:
    """Wait for all tasks; the first failure cancels the others and is raised."""
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    except asyncio.CancelledError:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)  # nothing outlives the caller
        raise
    for t in pending:
        t.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for t in done:
        if not t.cancelled() and t.exception() is not None:
            raise t.exception()  # type: ignore[misc]


def first_text_at(fragments: Any, default: float) -> float:
    """Latency counts from the first text, not from when we started waiting for stdin."""
    return getattr(fragments, "first_text_at", None) or default
