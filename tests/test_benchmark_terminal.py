"""benchmarks/terminal_bytes.py runs end to end through a pty (one protocol, one size, two steps), so it
cannot rot. Byte counts are never asserted here: they are in benchmarks/results/."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_terminal_bytes_benchmark_measures_through_a_pty(tmp_path):
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "terminal_bytes.py"), "--protocols", "sixel", "--sizes", "80x24",
         "--steps", "2", "--step-s", "0.05"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    for mode in ("before", "after"):
        assert re.search(rf"^sixel\s+80x24\s+{mode}\s+\d/2\s+[\d.]+ [KM]B .* [\d.]+ [KM]B/s\s+[\d.]+ [KM]B$",
                         done.stdout, re.M), done.stdout
    assert re.search(r"^sixel 80x24: previews [\d.]+x fewer bytes in all", done.stdout, re.M), done.stdout
