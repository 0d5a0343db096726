"""Showing untrusted text (prompts, PNG metadata, file names) safely.

Two dangers: control characters (ESC starts ANSI sequences that would reach the terminal raw) and
Textual markup (a prompt holding `[/]` or a file named `[bold]x.safetensors` would be parsed as
styling, or crash the widget that parses it). Everything here writes control characters out as
visible `\\xNN` escapes and returns objects that are never parsed as markup (Content, rich Text), or
notifies with markup off.
"""

from __future__ import annotations

import re

from rich.text import Text
from textual.content import Content

from picotui.engine.recipes.metadata import sanitize_for_terminal

# Lone surrogates: what Python makes of a non-UTF-8 file name (b"caf\xe9" -> "caf\udce9"). They
# cannot be encoded for the terminal, so they are shown as escapes too.
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def escape_controls(text: str, *, keep_newlines: bool = True) -> str:
    """`text` with every control character, bidi override and lone surrogate replaced by a visible escape
    (the engine's escaping, which `picotui info` uses too; undecodable bytes shown as the byte they were)."""
    out = sanitize_for_terminal(_SURROGATE.sub(lambda m: _surrogate_escape(m.group()), str(text)))
    if not keep_newlines:
        out = out.replace("\n", " ⏎ ").replace("\t", " ")
    return out


def _surrogate_escape(char: str) -> str:
    code = ord(char)
    # surrogateescape maps an undecodable byte 0xNN to U+DCNN: show the byte it stood for
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


def has_controls(text: str) -> bool:
    return escape_controls(text) != str(text)


def plain(text: str, *, one_line: bool = False) -> Content:
    """Content that shows `text` literally: no markup parsing, control characters escaped."""
    return Content(escape_controls(text, keep_newlines=not one_line))


def label(text: str, style: str = "") -> Text:
    """A one-line label for lists, selects and table cells: a rich Text (never parsed as markup, and
    what Select's type-to-search reads) with control characters escaped."""
    return Text(escape_controls(text, keep_newlines=False), style=style, no_wrap=True, end="")


def file_options(names: list[str], current: str | None, first: tuple[str, str] | None = None) -> list:
    """Select options for model file names: each label shows the name safely, each value keeps the
    raw name the engine needs. A current value that is not installed (restored from a PNG, say)
    stays selectable, marked as such. `first` is a fixed leading option ("demo", "checkpoint's own")."""
    options = [(label(first[0]), first[1])] if first else []
    options += [(label(n), n) for n in names if not first or n != first[1]]
    if current and current not in [value for _label, value in options]:
        options.append((label(f"{current} (not installed)"), current))
    return options


def shorten(text: str, limit: int) -> str:
    text = escape_controls(text, keep_newlines=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def say(node, text: str, severity: str = "information", timeout: float | None = None) -> None:
    """Notify from any widget, screen or the app: one line, escaped, markup off."""
    node.notify(escape_controls(text, keep_newlines=False), severity=severity, markup=False,
                **({"timeout": timeout} if timeout else {}))
