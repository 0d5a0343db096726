"""Helpers for the UI tests: settings an app restores, the engine events an app handled (through
`run_test(message_hook=...)`), waiting on them, notifications, screen text."""

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


class EngineEvents:
    """The engine events the app is handed, in order, seen through Textual's message hook:
    `app.run_test(message_hook=events.hook)`. The hook sees each message just before its handler runs,
    on the app's own loop, so a test that sees an event here sees what its handler did too."""

    def __init__(self):
        self.events: list = []

    def hook(self, message) -> None:
        from picotui.ui.engine_link import EngineMessage

        if isinstance(message, EngineMessage):
            self.events.append(message.event)

    def count(self, name: str) -> int:
        return sum(type(event).__name__ == name for event in self.events)

    def names(self) -> list[str]:
        return [type(event).__name__ for event in self.events]


def spy_calls(obj, method: str) -> list[tuple]:
    """Record every call of obj.method (its arguments), still calling it."""
    calls: list[tuple] = []
    original = getattr(obj, method)

    def spy(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)
    setattr(obj, method, spy)
    return calls


async def wait_for(pilot, predicate, timeout: float = 60.0, what: str = "condition", events=None) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            seen = f"; events: {events.names()[-20:]}" if events is not None else ""
            raise AssertionError(f"timed out waiting for {what}{seen}")
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
