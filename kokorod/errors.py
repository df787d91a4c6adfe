"""Errors a user can act on. The CLI prints them as one line, never a traceback."""

from __future__ import annotations


class KokorodError(Exception):
    """A failure with a known cause; ``fix`` tells the user what to run or change."""

    def __init__(self, message: str, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.message} (fix: {self.fix})" if self.fix else self.message


class AssetError(KokorodError):
    """A model, voice or language asset is missing or corrupt."""


class InputError(KokorodError):
    """The caller asked for something invalid: unknown voice, empty text, bad speed."""
