"""The model browser's Upscalers tab, with real key presses: each file with its architecture and scale; a file
that is not an upscaler says why; enter picks one."""

from __future__ import annotations

from paths_support import make_paths
from textual.widgets import DataTable
from ui_support import wait_for
from upscaler_support import build_models

from picotui.ui.app import PicoApp
from picotui.ui.screens.browser import ModelBrowser, Pick


async def test_upscalers_tab_lists_architecture_and_scale(tmp_path):
    paths = make_paths(tmp_path)
    build_models(paths.models)
    (paths.models / "ESRGAN").mkdir()  # A1111's folder, shared with it
    (paths.models / "upscalers" / "tiny-compact-2x.safetensors").rename(paths.models / "ESRGAN" / "compact.safetensors")
    (paths.models / "upscalers" / "broken.pth").write_bytes(b"not a pickle")
    app = PicoApp(paths, graphics_choice="none", start_engine=False)
    picked = []
    async with app.run_test(size=(140, 45)) as pilot:
        await wait_for(pilot, lambda: app.model_files, 30, "the scan")
        await pilot.press("ctrl+o")
        await pilot.pause()
        browser = app.screen
        assert isinstance(browser, ModelBrowser)
        original = browser.dismiss
        browser.dismiss = lambda result=None: (picked.append(result), original(result))[1]  # type: ignore[method-assign]
        await pilot.press("6")
        await pilot.pause()
        table = browser.query_one("#table-upscaler", DataTable)
        rows = {str(table.get_row_at(i)[0]): [str(c) for c in table.get_row_at(i)] for i in range(table.row_count)}
        assert rows["tiny-esrgan-4x.safetensors"][1] == "ESRGAN 4x"
        assert rows["compact.safetensors"][1] == "RealESRGAN Compact 2x"
        assert rows["denoise-1x.safetensors"][1] == "ESRGAN 1x"
        assert "1x restoration model" in rows["denoise-1x.safetensors"][4]
        assert "--allow-pickle" in rows["broken.pth"][4]
        assert "style-lora.safetensors" not in rows  # a LoRA: listed with the LoRAs
        names = list(rows)
        table.move_cursor(row=names.index("tiny-esrgan-4x.safetensors"))
        await pilot.press("enter")
        await pilot.pause()
    assert picked == [Pick("upscaler", "tiny-esrgan-4x.safetensors")]
