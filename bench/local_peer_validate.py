#!/usr/bin/env python3
"""Per-message cost of validating an in-process message (issue 17), in one run.

Before: the old ``LocalCodec`` (an adapter's ``Speak``/``Config`` encoded by the
JSON codec and decoded again). After: ``protocol.message_from_object`` (the
message's wire map through the same validators, no JSON), alone and with the
sizing ``LocalPeer.send`` adds for its bounded queue. Best of ``--repeat`` runs.

    PYTHONPATH=. .venv/bin/python bench/local_peer_validate.py
"""

from __future__ import annotations

import argparse
import timeit

from kokorod.daemon.local_peer import _size_bytes
from kokorod.protocol import JsonCodec, message_from_object
from kokorod.protocol.messages import Config, Speak

CASES = {
    # What the Wyoming adapter sends first: voice, lang auto, queue admission.
    "speak, 57 chars": Speak("w1", "The library opens at nine in the morning, said the clerk.", voice="af_heart",
                             lang="auto", mode="queue", admission="queue"),
    "speak, 21,000 chars": Speak("w1", "The library opens at nine in the morning. " * 500, final=True),
    "config frame_ms": Config(frame_ms=20),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    codec = JsonCodec(256 * 1024)
    limit = codec.max_message_bytes
    for name, message in CASES.items():
        n = 500 if len(getattr(message, "text", "")) > 1000 else 20000

        def best(fn: object) -> float:
            return min(timeit.repeat(fn, number=n, repeat=args.repeat)) / n * 1e6  # type: ignore[arg-type]

        old = best(lambda: codec.decode(codec.encode_message(message)))
        new = best(lambda: message_from_object(message, limit))
        sent = best(lambda: (_size_bytes(message), message_from_object(message, limit)))
        print(f"{name:20s} JSON round trip {old:7.2f} us | message_from_object {new:7.2f} us "
              f"| with send's sizing {sent:7.2f} us")


if __name__ == "__main__":
    main()
