"""`picotui grid`: an X/Y/Z plot without the TUI.

    picotui grid --x "CFG scale: 4-12 [5]" --y "Sampler: Euler a, DPM++ 2M" [generate's options]

The axes use the TUI's parser (engine/plots/axes.py): A1111's types and value syntax. Every cell is saved as
its own PNG (one path per line on stdout as it finishes, like `picotui generate`), then the labelled grid
PNG, whose path is the last line. Bad axes: exit status 2 and one line on stderr, before anything loads.
"""

from __future__ import annotations

import argparse
import queue
import sys
from dataclasses import replace
from pathlib import Path

from picotui.engine.errors import PicoError, RequestError

AXIS_HELP = "'Type: values', e.g. 'CFG scale: 4-12 [5]', 'Steps: 10-30 (+10)', 'Sampler: Euler a, DPM++ 2M'"


def register(sub: argparse._SubParsersAction) -> None:
    from picotui.cli.common import add_engine_arguments
    from picotui.cli.generate import add_request_arguments
    from picotui.engine.plots.axes import TYPE_NAMES

    p = sub.add_parser("grid", help="an X/Y/Z plot: one image per combination of axis values, and a labelled grid",
                       description=f"Axis types: {', '.join(TYPE_NAMES)}. Values: lists (7, 9, 11), ranges (1-5, "
                                   f"1-10 (+2), 1.0-2.0 [5]). --x 'Prompt matrix' makes A1111's prompt matrix of a prompt 'a | b | c'. "
                                   f"The other options are generate's: the base recipe.")
    p.add_argument("--x", required=True, metavar="AXIS", help=AXIS_HELP)
    p.add_argument("--y", default=None, metavar="AXIS", help="the rows (optional)")
    p.add_argument("--z", default=None, metavar="AXIS", help="one grid per value (optional)")
    p.add_argument("--keep-random-seeds", action="store_true",
                   help="a -1 seed stays random for every cell (default: one random seed for the whole grid)")
    add_request_arguments(p)
    p.add_argument("--outdir", default=None, help="where PNGs go (default: the outputs folder)")
    add_engine_arguments(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def build_plan(args: argparse.Namespace):
    from picotui.cli.generate import build_request
    from picotui.engine.plots.plan import build_plan as plan_for

    base = build_request(args)
    if base.batch_count != 1:
        raise RequestError("picotui grid makes one image per cell: leave out --batch-count.")
    return plan_for(base, args.x, args.y, args.z, keep_random=args.keep_random_seeds)


def run(args: argparse.Namespace) -> int:
    from picotui.cli.generate import _check_models, _settings

    plan = build_plan(args)  # RequestError -> one line, exit 2 (cli.main)
    paths, engine = _settings(args)
    if args.outdir:
        paths = replace(paths, outputs=Path(args.outdir).expanduser().resolve())
    for request in {(c.request.checkpoint, c.request.vae, c.request.loras): c.request for c in plan.cells}.values():
        _check_models(paths, request)
    print(f"picotui grid: {plan.describe()}", file=sys.stderr, flush=True)
    grid = run_plan(paths, plan, engine=engine, progress=not args.quiet and sys.stderr.isatty(),
                    on_path=lambda p: print(p, flush=True))
    print(grid, flush=True)
    return 0


def run_plan(paths, plan, *, engine: dict | None = None, progress=True, on_path=None) -> Path:
    """Run every cell through one Worker, save the grid; returns its path. Raises PicoError when no cell
    could be made (a failing cell is reported on stderr and drawn grey; the others go on)."""
    from picotui.cli.generate import _Progress
    from picotui.engine.events import Failed, Finished, Notice, Step
    from picotui.engine.jobs.worker import Worker
    from picotui.engine.plots.run import GridRun

    events: queue.SimpleQueue = queue.SimpleQueue()
    worker = Worker(paths, events.put, preview=False, **(engine or {})).start()
    grid = GridRun(plan)
    bar = _Progress(enabled=progress)
    try:
        grid.submit(worker)
        while not grid.done:
            event = events.get()
            if isinstance(event, Notice):
                bar.note(event.message)
            elif isinstance(event, Failed) and event.job_id == 0:
                raise PicoError(event.message, kind=event.kind)
            elif isinstance(event, Step) and event.job_id in grid.jobs:
                done = len(grid.results)
                bar.step(replace(event, image_index=done, batch_count=plan.count))
            index = grid.on_event(event)
            if index is None:
                continue
            result = grid.results[index]
            if isinstance(event, Finished) and result.path is not None and on_path:
                on_path(result.path)
            elif result.error:
                bar.note(f"cell {index + 1}: {result.error}")
        if not grid.images():
            raise PicoError("No cell of the grid could be made: see the messages above.", kind="grid")
        return grid.save_grid(paths.outputs)
    except KeyboardInterrupt:
        grid.cancel(worker)
        raise
    finally:
        bar.close()
        worker.shutdown(timeout=5)
