"""kokorod's failures as the LiveKit errors whose ``retryable`` drives the
framework's retries. Its own module so that the TTS and its streams both use it
without importing each other."""

from __future__ import annotations

from livekit.agents import APIConnectionError, APIError, APIStatusError

from kokorod.client import AuthenticationFailed, ConnectionLost, DaemonBusy, DaemonUnavailable, KokorodServerError
from kokorod.errors import InputError, KokorodError
from kokorod.protocol.messages import Cancelled, Error

# Errors worth retrying on a fresh attempt (the framework retries only while no
# audio has been pushed): the daemon was busy, not the request wrong.
_RETRYABLE_CODES = frozenset({"overloaded", "too_many_utterances", "rate_limited"})
_RETRYABLE_REASONS = frozenset({"overload", "shutdown"})


def api_error(exc: KokorodError) -> APIError:
    """A kokorod client failure as the LiveKit error its retry logic understands."""
    if isinstance(exc, (DaemonUnavailable, ConnectionLost)):
        return APIConnectionError(str(exc))
    if isinstance(exc, DaemonBusy):
        return APIStatusError(str(exc), status_code=503, retryable=True)
    if isinstance(exc, AuthenticationFailed):
        return APIStatusError(str(exc), status_code=401, retryable=False)
    if isinstance(exc, KokorodServerError):
        return APIStatusError(str(exc), status_code=503 if exc.code in _RETRYABLE_CODES else 400,
                              retryable=exc.code in _RETRYABLE_CODES, body={"code": str(exc.code)})
    if isinstance(exc, InputError):
        return APIError(str(exc), retryable=False)
    return APIError(str(exc), retryable=True)


def event_error(event: Error | Cancelled) -> APIError:
    """An utterance that ended with ``error`` or a ``cancelled`` we did not ask for."""
    if isinstance(event, Error):
        return api_error(KokorodServerError(event))
    retryable = event.reason in _RETRYABLE_REASONS
    return APIStatusError(f"the daemon cancelled utterance {event.utterance!r} ({event.reason})",
                          status_code=503 if retryable else 400, retryable=retryable,
                          body={"reason": str(event.reason)})
