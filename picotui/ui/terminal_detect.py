"""Which picture protocol a terminal really draws: a decision table from what the terminal *is*.

Answering the kitty graphics query is not enough: kitty before 0.28 answers it but has no Unicode
placeholders (the only way textual-image places kitty images inside a Textual screen, so it shows a
grid of boxes), WezTerm and Konsole answer it too and have no placeholders either. So the terminal
is named first, from its XTVERSION answer (`CSI > q`, answered over SSH too), then TERM_PROGRAM /
TERM (which SSH does not forward, except TERM), then DA1's sixel bit; inside tmux, from tmux's own
version, its `allow-passthrough` setting and the outer terminal tmux saw (`client_termtype`).

Everything here is pure: recorded answers in, a `Decision` (protocol + one line saying why) out.
The probing (bytes to and from the tty, asking tmux) is picotui.ui.terminal_probe.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

KITTY_PLACEHOLDERS = (0, 28)  # kitty 0.28 added Unicode placeholders (U=1)
TMUX_PASSTHROUGH = (3, 3)  # allow-passthrough appeared in tmux 3.3
TMUX_SIXEL = (3, 4)  # tmux 3.4 can be built with sixel
WINDOWS_TERMINAL_SIXEL = (1, 22)

# Terminals that draw sixel properly (each one's best protocol among those textual-image has).
SIXEL_TERMINALS = {"wezterm", "konsole", "foot", "mlterm", "iterm2", "contour", "windows terminal",
                   "mintty", "blackbox", "bobcat", "ctx", "xterm.js"}
KITTY_TERMINALS = {"ghostty"}  # kitty itself is decided by version


@dataclass(frozen=True)
class TmuxInfo:
    version: tuple[int, ...] | None  # from `tmux -V` or its XTVERSION answer
    passthrough: str | None = None  # `tmux show -gv allow-passthrough`: on / all / off (None: unknown)
    client_termtype: str = ""  # the outer terminal's XTVERSION as tmux saw it (tmux >= 3.3), e.g. "kitty(0.35.2)"
    client_termname: str = ""  # the outer terminal's TERM, e.g. "xterm-kitty"


@dataclass(frozen=True)
class Answers:
    """What the terminal and its environment said. Empty strings: no answer."""
    xtversion: str = ""  # the text inside DCS > | ... ST, e.g. "kitty(0.35.2)", "WezTerm 20240203-110809-5046fc22"
    da1: str = ""  # the parameters of CSI ? ... c, e.g. "62;4;22" (4 = sixel)
    da2: str = ""  # the parameters of CSI > ... c
    kitty_graphics: bool = False  # the kitty graphics query was answered OK
    env: tuple[tuple[str, str], ...] = ()  # TERM, TERM_PROGRAM, TERM_PROGRAM_VERSION, KONSOLE_VERSION, WT_SESSION...
    tmux: TmuxInfo | None = None
    is_tty: bool = True

    def getenv(self, key: str) -> str:
        return dict(self.env).get(key, "")


@dataclass(frozen=True)
class Terminal:
    name: str  # lower case: kitty, wezterm, xterm, ... ("" when unknown)
    version: tuple[int, ...] | None = None
    version_text: str = ""
    source: str = ""  # where the name came from: XTVERSION, TERM_PROGRAM, TERM, ...

    def label(self) -> str:
        if not self.name:
            return "unknown terminal"
        return f"{self.name} {self.version_text}".strip()


@dataclass(frozen=True)
class Decision:
    protocol: str  # kitty | sixel | halfcell | unicode
    terminal: Terminal
    reason: str  # one line: why this protocol
    tmux: TmuxInfo | None = None
    passthrough: bool = False  # kitty graphics wrapped for tmux passthrough
    hint: str = ""  # one line: what setting would give real pictures (tmux), "" when none

    def detected(self) -> str:
        """What was detected, for F3 and --check: terminal, version, tmux or not."""
        where = ""
        if self.tmux is not None:
            tmux_version = ".".join(map(str, self.tmux.version)) if self.tmux.version else "?"
            passthrough = self.tmux.passthrough or "unknown"
            where = f" inside tmux {tmux_version} (allow-passthrough {passthrough})"
        source = f" [from {self.terminal.source}]" if self.terminal.source else ""
        return f"{self.terminal.label()}{where}{source}"


_VERSION = re.compile(r"\d+(?:\.\d+)*")


def parse_version(text: str) -> tuple[int, ...] | None:
    """'0.35.2' -> (0, 35, 2); '20240203-110809-5046fc22' -> (20240203,); '' -> None."""
    match = _VERSION.search(text or "")
    return tuple(int(part) for part in match.group().split(".")) if match else None


def parse_xtversion(text: str) -> Terminal:
    """An XTVERSION answer ('kitty(0.35.2)', 'XTerm(390)', 'WezTerm 2024…', 'tmux 3.4', 'foot(1.16.2)')."""
    text = (text or "").strip()
    if not text:
        return Terminal("")
    match = re.match(r"^([A-Za-z][A-Za-z0-9_.+-]*(?: [A-Za-z][A-Za-z]+)*)[ (]+v?([^)\s]*)\)?", text)
    if match:
        name, version = match.group(1), match.group(2)
    else:
        name, version = text, ""
    return Terminal(_canonical(name), parse_version(version), version, "XTVERSION")


def _canonical(name: str) -> str:
    name = name.strip().lower()
    return {"xterm": "xterm", "iterm2": "iterm2", "iterm.app": "iterm2", "wezterm": "wezterm",
            "ghostty": "ghostty", "windowsterminal": "windows terminal"}.get(name, name)


def identify(answers: Answers) -> Terminal:
    """The terminal's name and version: XTVERSION first (it crosses SSH), then the environment."""
    if answers.xtversion:
        found = parse_xtversion(answers.xtversion)
        if found.name:
            return found
    program = answers.getenv("TERM_PROGRAM")
    if program and program.lower() != "tmux":
        version = answers.getenv("TERM_PROGRAM_VERSION")
        return Terminal(_canonical(program), parse_version(version), version, "TERM_PROGRAM")
    if answers.getenv("KONSOLE_VERSION"):
        version = answers.getenv("KONSOLE_VERSION")
        return Terminal("konsole", parse_version(version), version, "KONSOLE_VERSION")
    if answers.getenv("WT_SESSION"):
        return Terminal("windows terminal", None, "", "WT_SESSION")
    term = answers.getenv("TERM")
    for prefix, name in (("xterm-kitty", "kitty"), ("xterm-ghostty", "ghostty"), ("wezterm", "wezterm"),
                         ("foot", "foot"), ("mlterm", "mlterm"), ("konsole", "konsole")):
        if term.startswith(prefix):
            return Terminal(name, None, "", "TERM")
    return Terminal("", None, "", "")


def has_sixel(da1: str) -> bool:
    return "4" in (da1 or "").split(";")


def _outer_terminal(tmux: TmuxInfo) -> Terminal:
    if tmux.client_termtype:
        found = parse_xtversion(tmux.client_termtype)
        if found.name:
            return Terminal(found.name, found.version, found.version_text, "tmux client_termtype")
    found = identify(Answers(env=(("TERM", tmux.client_termname),)))
    return Terminal(found.name, found.version, found.version_text, "tmux client_termname" if found.name else "")


def _kitty_placeholders(term: Terminal) -> bool:
    if term.name in KITTY_TERMINALS:
        return True
    return term.name == "kitty" and (term.version is None or term.version >= KITTY_PLACEHOLDERS)


def _draws_sixel(term: Terminal, da1: str) -> bool:
    if term.name == "windows terminal":
        return term.version is None and has_sixel(da1) or bool(term.version and term.version >= WINDOWS_TERMINAL_SIXEL)
    return term.name in SIXEL_TERMINALS or has_sixel(da1)


def decide(answers: Answers) -> Decision:
    """The decision table. Every branch says why, in words a user can act on."""
    if answers.tmux is not None:
        return _decide_tmux(answers)
    term = identify(answers)
    if not answers.is_tty:
        return Decision("unicode", term, "not connected to a terminal: plain characters")
    name = term.label()
    if term.name == "kitty":
        if _kitty_placeholders(term):
            return Decision("kitty", term, f"{name} draws kitty graphics with Unicode placeholders")
        return Decision("halfcell", term, f"{name} is older than 0.28: it has no Unicode placeholders, the only way "
                        "kitty images can be placed in a Textual screen, and no sixel; half-blocks "
                        "(kitty 0.28 or newer shows real pictures)")
    if term.name in KITTY_TERMINALS:
        return Decision("kitty", term, f"{name} draws kitty graphics with Unicode placeholders")
    if term.name == "xterm":
        if has_sixel(answers.da1):
            return Decision("sixel", term, f"{name} answers DA1 with sixel (4)")
        return Decision("halfcell", term, f"{name} without sixel (its DA1 lacks 4): half-blocks; "
                        "`xterm -ti vt340` draws sixel pictures")
    if _draws_sixel(term, answers.da1):
        why = "answers DA1 with sixel (4)" if has_sixel(answers.da1) else "draws sixel"
        extra = " (its kitty graphics lack Unicode placeholders)" if answers.kitty_graphics else ""
        return Decision("sixel", term, f"{name} {why}{extra}")
    if answers.kitty_graphics:
        return Decision("kitty", term, f"{name} answers the kitty graphics query (if boxes appear instead of "
                        "pictures: --graphics halfcell)")
    return Decision("halfcell", term, f"{name} answers neither the sixel nor the kitty graphics query: half-blocks")


def _decide_tmux(answers: Answers) -> Decision:
    tmux = answers.tmux
    outer = _outer_terminal(tmux)
    version = tmux.version or ()
    label = f"tmux {'.'.join(map(str, version)) or '?'}"
    passthrough_on = (tmux.passthrough or "").lower() in ("on", "all")
    outer_label = outer.label() if outer.name else "an unknown outer terminal"
    kitty_outside = _kitty_placeholders(outer) if outer.name else False
    sixel_outside = outer.name in SIXEL_TERMINALS or (outer.name == "xterm")
    if kitty_outside and version >= TMUX_PASSTHROUGH and passthrough_on:
        return Decision("kitty", outer, f"{label} passes kitty graphics through (allow-passthrough "
                        f"{tmux.passthrough}) to {outer_label}", tmux=tmux, passthrough=True)
    # tmux answers DA1 itself: 4 only when built with sixel (3.4+); it redraws sixel for the outer terminal
    if has_sixel(answers.da1) and (sixel_outside or not outer.name):
        return Decision("sixel", outer, f"{label} draws sixel itself (its DA1 has 4)", tmux=tmux)
    hint = ""
    if kitty_outside and version >= TMUX_PASSTHROUGH:
        hint = "`tmux set -g allow-passthrough on` (then restart picotui) gives real kitty pictures"
    elif kitty_outside:
        hint = "tmux 3.3 or newer with `set -g allow-passthrough on` gives real kitty pictures"
    elif sixel_outside or outer.name == "":
        hint = "tmux 3.4 or newer built with sixel (./configure --enable-sixel) gives sixel pictures"
    why = f"{label} passes no pictures from here to {outer_label}: half-blocks"
    return Decision("halfcell", outer, why, tmux=tmux, hint=hint)
