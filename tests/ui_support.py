"""Helpers for the UI tests: settings an app restores, waiting on real engine events, notifications, screen text."""

from __future__ import annotations

import asyncio
import json
import time
from picotui.paths import Paths


def write_settings(paths: Paths, seed_locked: bool = False, **request) -> None:
    """What the app restores on start (how tests set a small, fast job without fighting the UI's bounds)."""
    from picotui.engine.request import GenerationRequest

    data = {"version": 1, "seed_locked": seed_locked, "request": GenerationRequest(**request).to_dict()}
    paths.settings_file.parent.mkdir(parents=True, exist_ok=True)
    paths.settings_file.write_text(json.dumps(data))


async def wait_for(pilot, predicate, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; events: {pilot.app.events_seen[-20:]}")
        await asyncio.sleep(0.05)
        await pilot.pause()


def text_of(app, selector: str) -> str:
    """What the Static at `selector` shows."""
    from textual.widgets import Static

    return str(app.query_one(selector, Static).render())


async def type_into(pilot, field_id: str, text: str) -> None:
    """Focus the Input #field_id and replace its text by typing `text`."""
    pilot.app.query_one(f"#{field_id}").focus()
    await pilot.press("ctrl+a", "ctrl+k", *text)  # Input: select all, delete to the end, type


def record_notifications(app) -> list[str]:
    """Every notification's message, kept (the app's own list drops them when they time out, which
    on a busy machine can happen before a test looks)."""
    said: list[str] = []
    notify = app.notify

    def recording(message, *args, **kwargs):
        said.append(str(message))
        return notify(message, *args, **kwargs)
    app.notify = recording
    return said


def screen_text(app) -> str:
    """What the terminal shows, as plain text lines (the same render as a screenshot, without styles)."""
    import io

    from rich.console import Console

    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True,
                      color_system="truecolor", record=True, legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text(styles=False)
