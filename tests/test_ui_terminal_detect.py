"""The decision table (picotui.ui.terminal_detect) from terminal answers as they come off the tty.

The tmux 3.3a replies were recorded here, inside tmux (tests/test_ui_terminal_detect.py's TMUX_33A);
the others are the answers each terminal documents for XTVERSION (`CSI > q`), DA1 (`CSI c`), DA2 and the
kitty graphics query (kitty: kitty's protocol docs and `kitty +kitten query-terminal`; xterm: ctlseqs,
`-ti vt340` adds 4 to DA1; foot, WezTerm: their escape-sequence docs; tmux: input.c's DA1 reply, with
4 only when built with sixel).
"""

from __future__ import annotations

import pytest

from picotui.ui.terminal_detect import TmuxInfo, decide, parse_xtversion
from picotui.ui.terminal_probe import cell_size_from, parse_replies

ST = "\x1b\\"
KITTY_OK = "\x1b_Gi=31;OK" + ST


def xtversion(text: str) -> str:
    return f"\x1bP>|{text}{ST}"


KITTY_026 = xtversion("kitty(0.26.5)") + "\x1b[>1;4000;26c" + KITTY_OK + "\x1b[6;20;10t" + "\x1b[?62;c"
KITTY_035 = xtversion("kitty(0.35.2)") + "\x1b[>1;4000;35c" + KITTY_OK + "\x1b[6;22;11t" + "\x1b[?62;c"
WEZTERM = xtversion("WezTerm 20240203-110809-5046fc22") + "\x1b[>1;277;0c" + KITTY_OK + "\x1b[?65;4;6;18;22c"
KONSOLE = "\x1b[>1;115;0c" + KITTY_OK + "\x1b[?62;22c"  # no XTVERSION answer; KONSOLE_VERSION in the env
FOOT = xtversion("foot(1.16.2)") + "\x1b[>1;11602;0c" + "\x1b[?62;4;22c"
XTERM_VT340 = xtversion("XTerm(379)") + "\x1b[>41;379;0c" + "\x1b[6;17;9t" + "\x1b[?63;1;2;4;6;9;15;16;22;28c"
XTERM_PLAIN = xtversion("XTerm(379)") + "\x1b[>41;379;0c" + "\x1b[?64;1;2;6;9;15;16;17;18;21;22;28c"
TMUX_33A = "\x1bP>|tmux 3.3a\x1b\\\x1b[>84;0;0c\x1b[?1;2c"  # recorded: tmux 3.3a (Debian 12), detached client
TMUX_32 = xtversion("tmux 3.2a") + "\x1b[>84;0;0c\x1b[?1;2c"
TMUX_34 = xtversion("tmux 3.4") + "\x1b[>84;0;0c\x1b[?1;2c"
TMUX_34_SIXEL = xtversion("tmux 3.4") + "\x1b[>84;0;0c\x1b[?1;2;4c"


def decide_from(replies: str, env: dict | None = None, tmux: TmuxInfo | None = None):
    return decide(parse_replies(replies, env or {"TERM": "xterm-256color"}, tmux))


@pytest.mark.parametrize("replies, env, protocol, words", [
    (KITTY_026, None, "halfcell", "older than 0.28"),
    (KITTY_035, None, "kitty", "Unicode placeholders"),
    (WEZTERM, None, "sixel", "lack Unicode placeholders"),
    (KONSOLE, {"TERM": "xterm-256color", "KONSOLE_VERSION": "230805"}, "sixel", "konsole"),
    (FOOT, None, "sixel", "foot 1.16.2"),
    (XTERM_VT340, None, "sixel", "sixel (4)"),
    (XTERM_PLAIN, None, "halfcell", "xterm -ti vt340"),
    ("", {"TERM": "xterm-kitty"}, "kitty", "kitty"),  # over SSH a silent kitty is still named by TERM
    ("", {"TERM": "xterm-256color"}, "halfcell", "neither"),
    ("\x1b[?62;4c", {"TERM": "xterm-256color"}, "sixel", "unknown terminal"),
])
def test_each_terminal_gets_what_it_really_draws(replies, env, protocol, words):
    found = decide_from(replies, env)
    assert found.protocol == protocol, found.reason
    assert words in found.reason + found.detected()


def test_kitty_026_is_named_with_its_version_and_why_it_gets_half_blocks():
    found = decide_from(KITTY_026)
    assert found.detected() == "kitty 0.26.5 [from XTVERSION]"
    assert found.terminal.version == (0, 26, 5)


def test_xtversion_names():
    assert parse_xtversion("WezTerm 20240203-110809-5046fc22").name == "wezterm"
    assert parse_xtversion("XTerm(379)").version == (379,)
    assert parse_xtversion("tmux 3.3a").version == (3, 3)
    assert parse_xtversion("ghostty 1.0.1").name == "ghostty"


def test_the_cell_size_reply_is_read():
    assert cell_size_from(KITTY_026) == (10, 20)
    assert cell_size_from(WEZTERM) is None


@pytest.mark.parametrize("replies, tmux, protocol, hint", [
    # tmux 3.2: no allow-passthrough option, no sixel: half-blocks, and the line says what would help
    (TMUX_32, TmuxInfo((3, 2), None, "", "xterm-kitty"), "halfcell", "tmux 3.3 or newer"),
    (TMUX_33A, TmuxInfo((3, 3), "on", "kitty(0.35.2)", "xterm-kitty"), "kitty", ""),
    (TMUX_33A, TmuxInfo((3, 3), "off", "kitty(0.35.2)", "xterm-kitty"), "halfcell", "allow-passthrough on"),
    (TMUX_34, TmuxInfo((3, 4), "on", "kitty(0.35.2)", "xterm-kitty"), "kitty", ""),
    (TMUX_34, TmuxInfo((3, 4), "off", "kitty(0.35.2)", "xterm-kitty"), "halfcell", "allow-passthrough on"),
    (TMUX_34_SIXEL, TmuxInfo((3, 4), "off", "XTerm(379)", "xterm"), "sixel", ""),
    (TMUX_34_SIXEL, TmuxInfo((3, 4), "on", "XTerm(379)", "xterm"), "sixel", ""),
    (TMUX_34, TmuxInfo((3, 4), "on", "XTerm(379)", "xterm"), "halfcell", "built with sixel"),
    # kitty 0.26 outside: passthrough would not help (no placeholders), tmux's sixel neither (kitty has none)
    (TMUX_34_SIXEL, TmuxInfo((3, 4), "on", "kitty(0.26.5)", "xterm-kitty"), "halfcell", ""),
])
def test_inside_tmux(replies, tmux, protocol, hint):
    found = decide_from(replies, {"TERM": "tmux-256color", "TMUX": "/tmp/tmux-0/default,1,0"}, tmux)
    assert found.protocol == protocol, found.reason
    assert found.passthrough == (protocol == "kitty")
    assert hint in found.hint and bool(hint) == bool(found.hint)
    assert "inside tmux" in found.detected()
