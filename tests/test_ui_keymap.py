"""Keys from config.toml's [keymap] table: read by the config loader, applied by Textual's keymap to the
bindings by id, shown by the keys screen and the command palette; an id no binding has is named in one
notice. Real key presses, no engine."""

from __future__ import annotations

from paths_support import make_paths
from textual.widgets import Input, Static
from ui_support import record_notifications, wait_for

from picotui.config import load_config
from picotui.ui.app import PicoApp
from picotui.ui.screens.help import KeysScreen


async def test_keymap_from_the_config_file_moves_keys(tmp_path):
    paths = make_paths(tmp_path)
    paths.config_file.parent.mkdir(parents=True, exist_ok=True)
    paths.config_file.write_text('[keymap]\nnew_seed = "f5"\nkeys = "f6,f7"\nno_such_binding = "f8"\n')
    config = load_config(paths.config_file)
    assert config.problem is None  # whether an id exists is the app's to say
    app = PicoApp(paths, graphics_choice="halfcell", start_engine=False, keymap=config.keymap)
    said = record_notifications(app)
    async with app.run_test(size=(140, 45)) as pilot:
        await pilot.pause()
        unknown = [m for m in said if "no_such_binding" in m]
        assert len(unknown) == 1 and "\n" not in unknown[0] and "new_seed" not in unknown[0]

        seed = app.query_one("#seed", Input)
        seed.value = ""
        await pilot.press("ctrl+r")  # the old key no longer does it
        await pilot.pause()
        assert seed.value == ""
        await pilot.press("f5")
        await pilot.pause()
        assert seed.value.isdigit()

        await pilot.press("f2")  # moved to f6 and f7
        await pilot.pause()
        assert not isinstance(app.screen, KeysScreen)
        await pilot.press("f7")
        await pilot.pause()
        assert isinstance(app.screen, KeysScreen)
        lines = str(app.screen.query_one("#keys-body", Static).render()).splitlines()
        assert any(line.startswith("f5 ") and "random seed" in line for line in lines), lines
        assert not any(line.startswith("ctrl+r") for line in lines)
        assert any(line.startswith("f6 / f7 / ? ") for line in lines), lines
        await pilot.press("escape")
        await pilot.pause()

        # the palette's hint is the key as it is now
        from textual.command import CommandList

        await pilot.press("ctrl+p", *"New random seed")
        await wait_for(pilot, lambda: app.screen.query(CommandList) and
                       app.screen.query_one(CommandList).option_count >= 1, 10, "the palette")
        prompt = str(app.screen.query_one(CommandList).get_option_at_index(0).prompt)
        assert prompt.startswith("New random seed") and "(f5)" in prompt and "ctrl+r" not in prompt, prompt
