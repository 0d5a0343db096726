"""Errors the engine reports to people: a kind (for code) and a one-line message (for humans)."""

from __future__ import annotations


class PicoError(Exception):
    """Base for every error whose message is meant for the user as-is.

    `kind` is a short stable word the UI and tests can match on; `str(err)` is one line that
    says what went wrong and what to do about it.
    """

    kind = "error"

    def __init__(self, message: str, kind: str | None = None):
        super().__init__(" ".join(message.split()))  # always one line
        if kind is not None:
            self.kind = kind


class RequestError(PicoError, ValueError):
    """A generation request with a value out of range or of the wrong type."""

    kind = "invalid-request"


class ModelError(PicoError):
    """A model file that is missing, unreadable, or not what the slot needs."""

    kind = "model"


class OutOfMemory(PicoError):
    kind = "out-of-memory"


class SaveError(PicoError):
    kind = "save"
