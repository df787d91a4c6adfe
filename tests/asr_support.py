"""Moved to tests/support/asr.py. This name stays importable for tests and
benches written before the move: it is the same module object, so private
names and monkeypatching keep working."""

import sys

try:
    from support import asr as _moved
except ImportError:  # imported as tests.asr_support, with only the repository root on sys.path
    from tests.support import asr as _moved  # type: ignore[no-redef]

sys.modules[__name__] = _moved
