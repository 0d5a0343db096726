"""The model browser (ctrl+o) on a real models/ tree: rows by kind, greyed unusable files, hashes
filled in, Enter picks (checkpoint/VAE set, LoRA row added, embedding into the prompt), empty state."""

from __future__ import annotations

from conftest import DIFFUSERS_LORA, EMBEDDING, KOHYA_LORA, TINY_CHECKPOINT, TINY_VAE
from paths_support import copy_models, make_paths
from textual.widgets import DataTable, Select, Static, TextArea
from ui_support import record_notifications, wait_for

from picotui.ui.app import PicoApp
from picotui.ui.screens.browser import ModelBrowser
from picotui.ui.widgets.lora_rows import LoraRow


def row_names(screen, kind: str) -> list[str]:
    table = screen.query_one(f"#table-{kind}", DataTable)
    return [str(table.get_row_at(i)[0]) for i in range(table.row_count)]


async def test_browse_and_pick_each_kind(tmp_path, models_root, cache_dir):
    models = copy_models(models_root, tmp_path / "models")
    (models / "checkpoints" / "broken.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json")
    paths = make_paths(tmp_path, models=models, cache=cache_dir)
    app = PicoApp(paths, graphics_choice="none", start_engine=False)
    async with app.run_test(size=(140, 45)) as pilot:
        await wait_for(pilot, lambda: app.model_files, 30, "the scan")
        await pilot.press("ctrl+o")
        await pilot.pause()
        browser = app.screen
        assert isinstance(browser, ModelBrowser)
        assert row_names(browser, "checkpoint") == ["demo", "broken.safetensors", TINY_CHECKPOINT]
        table = browser.query_one("#table-checkpoint", DataTable)
        broken = table.get_row_at(1)
        assert broken[0].style == "dim" and "can't use" in str(broken[4])
        await wait_for(pilot, lambda: len(app.hashes) >= 5, 30, "the hashes")
        await pilot.pause()
        hashes = [str(c) for c in table.get_column("hash")]
        assert any(len(h) == 10 for h in hashes)

        # Enter on the broken file explains; on the tiny checkpoint picks it
        await pilot.press("down", "enter")
        await pilot.pause()
        assert isinstance(app.screen, ModelBrowser)
        await pilot.press("down", "enter")
        await pilot.pause()
        assert not isinstance(app.screen, ModelBrowser)
        assert str(app.query_one("#checkpoint", Select).value) == TINY_CHECKPOINT

        await pilot.press("ctrl+o", "2")  # VAEs
        await pilot.pause()
        assert row_names(app.screen, "vae") == [TINY_VAE]
        await pilot.press("enter")
        await pilot.pause()
        assert str(app.query_one("#vae", Select).value) == TINY_VAE

        await pilot.press("ctrl+o", "3")  # LoRAs: added as a row
        await pilot.pause()
        assert sorted(row_names(app.screen, "lora")) == sorted([KOHYA_LORA, DIFFUSERS_LORA])
        await pilot.press("enter")
        await pilot.pause()
        rows = list(app.query(LoraRow))
        assert len(rows) == 1 and rows[0].spec[0] in (KOHYA_LORA, DIFFUSERS_LORA) and rows[0].spec[1] == "0.8"

        await pilot.press("ctrl+o", "4", "enter")  # an embedding goes into the prompt
        await pilot.pause()
        # A1111 names an embedding after its file, without the extension
        assert app.query_one("#prompt", TextArea).text.endswith(", " + EMBEDDING.removesuffix(".safetensors"))
        request = app.query_one("#form").request()
        assert request.checkpoint == TINY_CHECKPOINT and request.vae == TINY_VAE and len(request.loras) == 1


async def test_empty_library_says_where_files_go_and_r_finds_a_file_added_since(tmp_path, tiny_checkpoint):
    import shutil

    paths = make_paths(tmp_path)
    app = PicoApp(paths, graphics_choice="none", start_engine=False)
    said = record_notifications(app)
    async with app.run_test(size=(140, 45)) as pilot:
        await wait_for(pilot, lambda: app._scanned_once, 10, "the scan")
        guide = str(app.query_one("#image-guide", Static).render())
        # said in the empty image pane (first-run guidance), not in a toast over the picture
        assert "demo model is in use" in guide and str(paths.models / "checkpoints") in guide.replace("\n", "")
        assert not [m for m in said if "demo model is in use" in m]
        app.query_one("#form").set_model("checkpoint", "someone-elses.safetensors")
        await pilot.press("ctrl+o")
        await pilot.pause()
        intro = str(app.screen.query_one("#browser-intro", Static).render())
        assert "No model files found" in intro and str(paths.models / "checkpoints") in intro
        browser = app.screen
        assert row_names(browser, "checkpoint") == ["demo"]
        # a file dropped in while the browser is open: r must find it (not only say it rescans)
        (paths.models / "checkpoints").mkdir(parents=True, exist_ok=True)
        shutil.copy(tiny_checkpoint, paths.models / "checkpoints" / TINY_CHECKPOINT)
        await pilot.press("r")
        await wait_for(pilot, lambda: row_names(browser, "checkpoint") == ["demo", TINY_CHECKPOINT], 30,
                       "the new file's row")
        intro = str(browser.query_one("#browser-intro", Static).render())
        assert "No model files found" not in intro and "Checkpoints: 1" in intro
        await pilot.pause(0.3)
        guide = str(app.query_one("#image-guide", Static).render())
        assert guide.count("demo model is in use") == 1  # not again on a rescan
        assert not [m for m in said if "demo model" in m]
        await pilot.press("d")  # the demo model
        await pilot.pause()
        assert str(app.query_one("#checkpoint", Select).value) == "demo"


async def test_with_the_pickle_opt_in_ckpt_checkpoints_are_offered(tmp_path, tiny_checkpoint):
    """--allow-pickle reaches the app's own library: a .ckpt is listed as usable and can be picked."""
    import torch
    from safetensors.torch import load_file

    models = tmp_path / "models"
    (models / "checkpoints").mkdir(parents=True)
    torch.save({"state_dict": load_file(str(tiny_checkpoint))}, models / "checkpoints" / "old_model.ckpt")
    for opt_in in (False, True):
        app = PicoApp(make_paths(tmp_path, models=models), graphics_choice="none", start_engine=False,
                      engine_options={"allow_pickle": opt_in})
        async with app.run_test(size=(140, 45)) as pilot:
            await wait_for(pilot, lambda app=app: app._scanned_once, 30, "the scan")
            (ckpt,) = [f for f in app.model_files if f.name == "old_model.ckpt"]
            assert ckpt.usable is opt_in
            offered = [str(value) for _label, value in app.query_one("#checkpoint", Select)._options]
            assert ("old_model.ckpt" in offered) is opt_in
