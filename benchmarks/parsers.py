"""How the text parsers' running time grows with hostile input (prompt attention, token count, A1111
parameters text): each input at n and 2n characters, the time ratio printed. Linear parsing shows a
ratio near 2; a return to A1111's quadratic loops shows about 4. Tests only guard against hangs
(tests/hang_guard.py); this is where growth is measured.

    python benchmarks/parsers.py            # 10,000 and 20,000 characters (the request maximum)
    python benchmarks/parsers.py --n 50000  # larger inputs
"""

from __future__ import annotations

import argparse
import time

from picotui.engine.prompting.prompts import parse_prompt_attention
from picotui.engine.prompting.tokens import count_tokens
from picotui.engine.recipes.metadata import parse_parameters

# name -> (function, a piece repeated to make the input): the inputs the hang-guard tests use
CASES = {
    "attention: open brackets": (parse_prompt_attention, "(a"),
    "attention: spaces": (parse_prompt_attention, " "),
    "attention: mixed brackets": (parse_prompt_attention, "[(a"),
    "attention: unclosed tags": (parse_prompt_attention, "<a:"),
    "tokens: open brackets": (count_tokens, "(a"),
    "parameters: words": (lambda s: parse_parameters("prompt\n" + s), "word "),
    "parameters: keys": (lambda s: parse_parameters("prompt\n" + s), "k: v, "),
    "parameters: quotes": (lambda s: parse_parameters("prompt\n" + s), '"'),
}


def best_of(fn, text: str, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn(text)
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=10_000, help="characters in the smaller input (default 10000)")
    args = p.parse_args(argv)
    print(f"{'case':<28} {'n s':>9} {'2n s':>9} {'ratio':>6}")
    for name, (fn, piece) in CASES.items():
        small = piece * max(1, args.n // len(piece))
        t1, t2 = best_of(fn, small), best_of(fn, small * 2)
        print(f"{name:<28} {t1:9.4f} {t2:9.4f} {t2 / max(t1, 1e-9):6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
