"""Bytes written to the terminal per image and per second, for each picture protocol, through a pty.

Each run starts a child in a pseudo-terminal (80×24 or 200×60 cells of 10×20 pixels) running a Textual
app whose one widget is picotui's real ImagePane, forced to one protocol. The child plays one job: STEPS
live previews (64×64, as the engine's latent preview is for 512², going from noise to the picture),
one every STEP_S seconds, then the final 512×512 image. The parent reads everything the child writes to
the pty and counts it between markers the child writes around the job.

"before" draws each preview as the app did before previews had a budget (every frame, full quality,
textual-image's own kitty widget); "after" is the app as it is (budget, cheap preview encodings).

    python benchmarks/terminal_bytes.py                  # all protocols, both sizes, before and after
    python benchmarks/terminal_bytes.py --protocols sixel --sizes 80x24 --save
"""

from __future__ import annotations

import argparse
import fcntl
import os
import platform
import pty
import re
import select
import struct
import sys
import termios
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARK = re.compile(rb"\x1b\]1337;picotui-bench-(\w+)(?:;([^\x07]*))?\x07")
CELL = (10, 20)


# ---- the child: the real image pane in a Textual app ----------------------------------------------
def child(protocol: str, mode: str, steps: int, step_s: float, rate: str) -> None:
    import random

    from PIL import Image, ImageFilter
    from textual.app import App

    from picotui.ui import graphics

    graphics.prepare(protocol)
    graphics.set_preview_rate("0" if mode == "before" else rate)
    if mode == "before" and protocol == "kitty":
        from textual_image import widget as tiw

        graphics._state["widget"] = tiw.TGPImage  # textual-image's own kitty widget, as before
    import textual_image

    from picotui.ui.widgets.image_pane import ImagePane

    picture = Image.open(Path(textual_image.__file__).parent / "gracehopper.jpg").convert("RGB")
    final = picture.resize((512, 512), Image.Resampling.LANCZOS)
    small = final.resize((64, 64), Image.Resampling.BOX)
    rng = random.Random(1)
    noise = Image.frombytes("RGB", (64, 64), bytes(rng.randrange(256) for _ in range(64 * 64 * 3)))

    def mark(name: str, extra: str = "") -> None:
        os.write(sys.__stdout__.fileno(), f"\x1b]1337;picotui-bench-{name}{';' + extra if extra else ''}\x07".encode())

    class Bench(App):
        CSS = "ImagePane { width: 100%; height: 100%; }"

        def compose(self):
            yield ImagePane(id="image-pane")

        async def on_mount(self) -> None:
            self.set_timer(1.0, self.play)

        async def play(self) -> None:
            import asyncio

            pane = self.query_one(ImagePane)
            drawn = 0
            mark("start")
            for step in range(1, steps + 1):
                frame = Image.blend(noise, small, step / steps).filter(ImageFilter.SMOOTH)
                pane.show(frame, f"preview · step {step}/{steps}", preview=(mode == "after"))
                pictures = pane.query("#picture")  # a frame the budget skipped never reaches the picture widget
                drawn += bool(pictures) and pictures.first().image is frame
                await asyncio.sleep(step_s)
            mark("final", str(drawn))
            from picotui.ui.image_widgets import meter

            pane.show(final, "seed 1 · 512×512")
            for _ in range(600):  # until Textual has written the screen update that draws it
                await asyncio.sleep(0.1)
                if meter.pending is None:
                    break
            await asyncio.sleep(0.5)
            mark("end")
            self.exit()

    Bench().run()


# ---- the parent: a pty, and counting ----------------------------------------------------------------
def run_one(protocol: str, mode: str, cols: int, rows: int, steps: int, step_s: float, rate: str) -> dict:
    pid, fd = pty.fork()
    if pid == 0:
        os.environ.update(TERM="xterm-256color", PYTHONPATH=str(ROOT), COLUMNS=str(cols), LINES=str(rows))
        os.execv(sys.executable, [sys.executable, __file__, "--child", protocol, mode, str(steps), str(step_s), rate])
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, cols * CELL[0], rows * CELL[1]))
    data, stamps = bytearray(), {}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if not select.select([fd], [], [], 1.0)[0]:
            continue
        try:
            chunk = os.read(fd, 1 << 16)
        except OSError:
            break
        if not chunk:
            break
        data += chunk
        for match in MARK.finditer(data[-len(chunk) - 64:]):
            stamps.setdefault(match.group(1).decode(), time.monotonic())
    os.waitpid(pid, 0)
    os.close(fd)
    marks = {m.group(1).decode(): (m.start(), m.end(), (m.group(2) or b"").decode()) for m in MARK.finditer(data)}
    if not {"start", "final", "end"} <= set(marks):
        tail = bytes(data[-600:]).decode("utf-8", "replace")
        raise RuntimeError(f"{protocol} {mode} {cols}x{rows}: the child did not finish: {tail!r}")
    previews = marks["final"][0] - marks["start"][1]
    seconds = stamps["final"] - stamps["start"]
    return {"protocol": protocol, "mode": mode, "size": f"{cols}x{rows}", "drawn": int(marks["final"][2]),
            "steps": steps, "preview_bytes": previews, "per_second": previews / seconds if seconds else 0,
            "final_bytes": marks["end"][0] - marks["final"][1], "seconds": seconds}


def human(count: float) -> str:
    return f"{count / 1e6:.2f} MB" if count >= 1e6 else f"{count / 1e3:.1f} KB"


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        protocol, mode, steps, step_s, rate = sys.argv[2:7]
        child(protocol, mode, int(steps), float(step_s), rate)
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--protocols", default="halfcell,sixel,kitty")
    parser.add_argument("--sizes", default="80x24,200x60")
    parser.add_argument("--modes", default="before,after")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--step-s", type=float, default=0.1, help="seconds between previews (0.1: 10 it/s)")
    parser.add_argument("--rate", default="200K", help="the preview budget for 'after'")
    parser.add_argument("--save", action="store_true", help="write benchmarks/results/<date>-terminal-bytes.txt")
    args = parser.parse_args()
    lines = [f"picotui terminal bytes · {date.today()} · {platform.node()} · Python {platform.python_version()} · "
             f"{args.steps} previews 64×64 every {args.step_s} s, then the final 512×512; budget {args.rate}/s; "
             f"cells {CELL[0]}×{CELL[1]} px",
             f"{'protocol':<9} {'size':<7} {'mode':<6} {'drawn':>7} {'previews':>10} {'per preview':>12} "
             f"{'per second':>11} {'final image':>12}"]
    print(*lines, sep="\n", flush=True)
    results = {}
    for protocol in args.protocols.split(","):
        for size in args.sizes.split(","):
            cols, rows = map(int, size.split("x"))
            for mode in args.modes.split(","):
                r = run_one(protocol, mode, cols, rows, args.steps, args.step_s, args.rate)
                results[(protocol, size, mode)] = r
                line = (f"{protocol:<9} {size:<7} {mode:<6} {r['drawn']:>3}/{r['steps']:<3} {human(r['preview_bytes']):>10} "
                        f"{human(r['preview_bytes'] / max(1, r['drawn'])):>12} {human(r['per_second']) + '/s':>11} "
                        f"{human(r['final_bytes']):>12}")
                lines.append(line)
                print(line, flush=True)
    for (protocol, size, mode), r in results.items():
        before = results.get((protocol, size, "before"))
        if mode == "after" and before and r["preview_bytes"]:
            per_before = before["preview_bytes"] / max(1, before["drawn"])
            per_after = r["preview_bytes"] / max(1, r["drawn"])
            line = (f"{protocol} {size}: previews {before['preview_bytes'] / r['preview_bytes']:.1f}x fewer bytes in all, "
                    f"{per_before / per_after:.1f}x fewer per drawn frame")
            lines.append(line)
            print(line, flush=True)
    if args.save:
        out = ROOT / "benchmarks" / "results" / f"{date.today()}-terminal-bytes.txt"
        out.write_text("\n".join(lines) + "\n")
        print(f"saved {out}")


if __name__ == "__main__":
    main()
