"""A hang guard, not a speed check: the call must return within HANG_GUARD_S, a bound minutes away from what
any correct implementation needs even on a loaded CI machine. It catches an endless loop (or a
catastrophically backtracking regex), never slowness; how running time grows with input size is measured
in benchmarks/parsers.py."""

from __future__ import annotations

import threading

HANG_GUARD_S = 120


def finishes(fn, *args):
    """fn(*args), failing the test if it has not returned within the hang guard."""
    done = threading.Event()
    result = []

    def run():
        result.append(fn(*args))
        done.set()

    threading.Thread(target=run, daemon=True).start()
    assert done.wait(HANG_GUARD_S), f"hang guard: {fn.__name__} still running after {HANG_GUARD_S} s"
    return result[0]
