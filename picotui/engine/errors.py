"""Errors the engine reports to people: a kind (for code) and a one-line message (for humans)."""

from __future__ import annotations


def one_line(value, limit: int | None = None) -> str:
    """`value` (an exception, or any text) as one line, cut to `limit` characters with "…".

    An exception with no text says its type. A value nested too deeply to print (from a file) says so
    rather than raising."""
    try:
        text = " ".join(str(value).split())
    except RecursionError:
        text = f"({type(value).__name__} nested too deeply to show)"
    if not text and isinstance(value, BaseException):
        text = type(value).__name__
    return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"


class PicoError(Exception):
    """Base for every error whose message is meant for the user as-is.

    `kind` is a short stable word the UI and tests can match on; `str(err)` is one line that
    says what went wrong and what to do about it.
    """

    kind = "error"

    def __init__(self, message: str, kind: str | None = None):
        super().__init__(one_line(message))  # always one line
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


class JobCancelled(Exception):
    """The user cancelled the running job; raised at the next cancel check. Not an error: it becomes a
    Cancelled event, never a Failed one."""


def is_out_of_memory(exc: BaseException) -> bool:
    """True for a GPU out-of-memory error in any of the forms torch raises it.

    torch.OutOfMemoryError (a RuntimeError subclass) and older torch's / cuDNN's / cuBLAS's plain
    RuntimeError (torch.AcceleratorError is one too): "CUDA out of memory ...", "CUDA error: out of
    memory", "CUBLAS_STATUS_ALLOC_FAILED", and the two that say it without saying it: cuBLAS cannot
    create its handle ("CUBLAS_STATUS_NOT_INITIALIZED") and cuDNN finds no algorithm whose workspace
    fits ("GET was unable to find an engine to execute this computation"), both for want of memory on
    a nearly full card. Checked by name so this module never imports torch. An OutOfMemory we raised
    ourselves counts too.
    """
    if isinstance(exc, OutOfMemory):
        return True
    if any(cls.__name__ == "OutOfMemoryError" and cls.__module__.startswith("torch") for cls in type(exc).__mro__):
        return True
    if isinstance(exc, RuntimeError):
        text = str(exc).lower()
        return any(sign in text for sign in OUT_OF_MEMORY_SIGNS)
    return False


OUT_OF_MEMORY_SIGNS = ("out of memory", "alloc_failed", "cublas_status_not_initialized",
                       "unable to find an engine")
