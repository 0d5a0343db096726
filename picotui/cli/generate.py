"""`picotui generate`: headless generation. OWNER: engine helper (fills this in)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="generate images without the TUI")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise NotImplementedError


def run_check(args: argparse.Namespace) -> int:
    """`picotui --check`: load the demo model and make one tiny image, headless."""
    raise NotImplementedError
