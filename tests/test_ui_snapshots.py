"""Snapshot tests (pytest-textual-snapshot): main screen, model browser, F1 help and the keys screen.

Deterministic: no engine (its text depends on the machine), default settings, fixed folders and
terminal size. Update after an intended change with `pytest tests/test_ui_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from picotui.paths import Paths
from picotui.ui.app import PicoApp

ROOT = Path("/tmp/picotui-ui-snapshot")  # fixed: the browser shows the models path


@pytest.fixture
def app():
    shutil.rmtree(ROOT, ignore_errors=True)
    for sub in ("checkpoints", "vae", "loras", "embeddings"):
        (ROOT / "models" / sub).mkdir(parents=True)
    paths = Paths(models=ROOT / "models", outputs=ROOT / "outputs", config_file=ROOT / "config" / "config.toml",
                  state=ROOT / "state", cache=ROOT / "cache")
    app = PicoApp(paths, graphics_choice="none", start_engine=False)
    app.animation_level = "none"  # no smooth scrolling: a screenshot must not catch a scroll half-way
    yield app
    shutil.rmtree(ROOT, ignore_errors=True)


async def _settle(pilot):
    from textual.widgets import Input, TextArea

    for widget in pilot.app.query(TextArea).results():
        widget.cursor_blink = False  # the blink phase depends on timing
    for widget in pilot.app.query(Input).results():
        widget.cursor_blink = False
    await pilot.pause(0.4)  # token counters and the library scan land after the first paint
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()


def test_main_screen(snap_compare, app):
    assert snap_compare(app, terminal_size=(140, 45), run_before=_settle)


def test_main_screen_compact(snap_compare, app):
    assert snap_compare(app, terminal_size=(80, 24), run_before=_settle)


def test_model_browser_empty(snap_compare, app):
    assert snap_compare(app, press=["ctrl+o"], terminal_size=(140, 45), run_before=_settle)


def test_help_for_cfg(snap_compare, app):
    async def focus_cfg(pilot):
        await _settle(pilot)
        pilot.app.query_one("#cfg").focus()
        await pilot.pause()
        await pilot.press("f1")
        await pilot.pause()

    assert snap_compare(app, terminal_size=(140, 45), run_before=focus_cfg)


def test_keys_screen(snap_compare, app):
    async def keys(pilot):
        await _settle(pilot)
        await pilot.press("f2")
        await pilot.pause()

    assert snap_compare(app, terminal_size=(140, 45), run_before=keys)
