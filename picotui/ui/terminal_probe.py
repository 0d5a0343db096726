"""Asking the terminal (and tmux) what it is, before Textual owns stdin; the decision itself is
picotui.ui.terminal_detect.

One burst of queries is written: XTVERSION (`CSI > q`), DA2 (`CSI > c`), the kitty graphics query,
the cell size (`CSI 16 t`), and DA1 (`CSI c`) last: every terminal answers DA1 and answers in order,
so its answer ends the read without waiting for a timeout. A terminal that answers nothing costs the
timeout once (default 1 s: SSH round trips). Inside tmux, tmux itself is asked for its version, its
allow-passthrough setting and the outer terminal's XTVERSION (client_termtype).
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import time

from picotui.ui.terminal_detect import Answers, TmuxInfo, parse_version

log = logging.getLogger("picotui.ui")

QUERIES = ("\x1b[>q"  # XTVERSION
           "\x1b[>c"  # DA2
           "\x1b_Gi=31,s=1,v=1,a=q,t=d,f=24;AAAA\x1b\\"  # kitty graphics: answered by terminals that have it
           "\x1b[16t"  # cell size in pixels
           "\x1b[c")  # DA1, the sentinel
ENV_KEYS = ("TERM", "TERM_PROGRAM", "TERM_PROGRAM_VERSION", "KONSOLE_VERSION", "WT_SESSION", "TMUX",
            "KITTY_WINDOW_ID")

_XTVERSION = re.compile(r"\x1bP>\|(.*?)(?:\x1b\\|\x07)", re.S)
_DA1 = re.compile(r"\x1b\[\?([\d;]*)c")
_DA2 = re.compile(r"\x1b\[>([\d;]*)c")
_KITTY = re.compile(r"\x1b_G([^;\x1b]*);([^\x1b]*)\x1b\\")
_CELL = re.compile(r"\x1b\[6;(\d+);(\d+)t")


def parse_replies(text: str, env: dict[str, str], tmux: TmuxInfo | None = None, is_tty: bool = True) -> Answers:
    """Recorded terminal replies (all of them, in one string) -> Answers."""
    xtversion = _XTVERSION.search(text)
    da1, da2 = _DA1.search(text), _DA2.search(text)
    kitty = _KITTY.search(text)
    return Answers(xtversion=xtversion.group(1) if xtversion else "", da1=da1.group(1) if da1 else "",
                   da2=da2.group(1) if da2 else "", kitty_graphics=bool(kitty and kitty.group(2).startswith("OK")),
                   env=tuple((k, env[k]) for k in ENV_KEYS if env.get(k)), tmux=tmux, is_tty=is_tty)


def cell_size_from(text: str) -> tuple[int, int] | None:
    """(width, height) of a cell in pixels from a `CSI 6 ; h ; w t` reply."""
    match = _CELL.search(text)
    if match and int(match.group(1)) and int(match.group(2)):
        return int(match.group(2)), int(match.group(1))
    return None


def read_replies(timeout: float = 1.0) -> str:
    """Write the queries to the tty and collect the replies until DA1's answer (or the timeout)."""
    import select
    import termios
    import tty

    fd_in, fd_out = sys.__stdin__.fileno(), sys.__stdout__.fileno()
    saved = termios.tcgetattr(fd_in)
    got = b""
    try:
        tty.setcbreak(fd_in, termios.TCSANOW)
        os.write(fd_out, QUERIES.encode())
        deadline = time.monotonic() + timeout
        while not _DA1.search(got.decode("latin-1")):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd_in], [], [], left)[0]:
                break
            chunk = os.read(fd_in, 4096)
            if not chunk:
                break
            got += chunk
    finally:
        termios.tcsetattr(fd_in, termios.TCSANOW, saved)
    return got.decode("utf-8", "replace")


def ask_tmux() -> TmuxInfo | None:
    """tmux's version, allow-passthrough and the outer terminal, when running inside tmux."""
    if not os.environ.get("TMUX"):
        return None

    def tmux(*args: str) -> str:
        try:
            done = subprocess.run(["tmux", *args], capture_output=True, text=True, timeout=2)
            return done.stdout.strip() if done.returncode == 0 else ""
        except (OSError, subprocess.SubprocessError):
            return ""

    version = tmux("-V").removeprefix("tmux").strip()
    return TmuxInfo(version=parse_version(version), passthrough=tmux("show", "-gv", "allow-passthrough") or None,
                    client_termtype=tmux("display", "-p", "#{client_termtype}"),
                    client_termname=tmux("display", "-p", "#{client_termname}"))


def probe(timeout: float = 1.0) -> tuple[Answers, tuple[int, int] | None]:
    """Ask the terminal. Never raises: no tty (or an error) gives the answers of a silent terminal."""
    is_tty = bool(sys.__stdin__ and sys.__stdout__ and sys.__stdin__.isatty() and sys.__stdout__.isatty())
    replies = ""
    if is_tty:
        try:
            replies = read_replies(timeout)
        except Exception as exc:  # a tty that refuses termios calls: decide from the environment
            log.info("terminal probe failed: %s", exc)
    log.info("terminal replies: %r", replies)
    answers = parse_replies(replies, dict(os.environ), ask_tmux(), is_tty)
    return answers, cell_size_from(replies)
