"""Showing untrusted text (prompts, PNG metadata, file names) safely: control characters and ANSI
escapes are written out as visible escapes, never sent raw to the terminal."""

from __future__ import annotations

import re

from textual.content import Content

# C0 controls except tab/newline, DEL, and C1 controls (ESC starts ANSI sequences; C1 CSI too).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def escape_controls(text: str, *, keep_newlines: bool = True) -> str:
    """`text` with every control character replaced by a visible `\\xNN` escape."""
    out = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))
    if not keep_newlines:
        out = out.replace("\r", "").replace("\n", " ⏎ ").replace("\t", " ")
    return out


def has_controls(text: str) -> bool:
    return bool(_CONTROL.search(str(text)))


def plain(text: str, *, one_line: bool = False) -> Content:
    """Content that shows `text` literally: no markup parsing, control characters escaped."""
    return Content(escape_controls(text, keep_newlines=not one_line))


def shorten(text: str, limit: int) -> str:
    text = escape_controls(text, keep_newlines=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"
