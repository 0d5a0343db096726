"""`picotui info FILE.png` and `picotui models`. OWNER: library/metadata helper (fills this in)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    pass
