"""Previews fit the link: the bytes-per-second budget skips preview frames, never the final image;
kitty graphics reach the outer terminal through tmux wrapped as tmux documents it."""

from __future__ import annotations

import pytest
from PIL import Image
from textual.app import App

from picotui.ui import graphics
from picotui.ui.image_widgets import PreviewBudget, meter, parse_rate, tmux_wrap
from picotui.ui.widgets.image_pane import ImagePane


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_the_budget_lets_a_frame_through_when_a_second_has_paid_for_it():
    clock = Clock()
    budget = PreviewBudget(200_000, clock)
    assert budget.allow(0, None)  # the first preview goes at once
    written = 150_000  # what the terminal was sent for it
    clock.now += 0.1
    assert not budget.allow(written, 150_000)  # 0.1 s refilled 20 KB: not enough for another 150 KB
    clock.now += 0.6
    assert budget.allow(written, 150_000)  # 200 - 150 + 140 = 190 KB in the bucket
    assert budget.dropped == 1


def test_a_frame_dearer_than_a_second_waits_for_a_full_bucket_not_forever():
    clock = Clock()
    budget = PreviewBudget(100_000, clock)
    assert budget.allow(0, 1_000_000)
    assert not budget.allow(1_000_000, 1_000_000)  # 10 s of debt
    clock.now += 10.9
    assert budget.allow(1_000_000, 1_000_000)


@pytest.mark.parametrize("text, rate", [("200K", 200_000), ("1.5M", 1_500_000), ("0", 0), ("300kb/s", 300_000),
                                        ("5000", 5000), ("fast", None), ("-1K", None)])
def test_rates(text, rate):
    assert parse_rate(text) == rate


def test_tmux_passthrough_doubles_every_escape():
    # tmux(1), allow-passthrough: "\ePtmux;" + the sequence with each ESC doubled + "\e\\"
    assert tmux_wrap("\x1b_Ga=d;\x1b\\") == "\x1bPtmux;\x1b\x1b_Ga=d;\x1b\x1b\\\x1b\\"


class PaneApp(App):
    def compose(self):
        yield ImagePane(id="image-pane")


@pytest.fixture
def halfcell_with_a_small_budget():
    saved, saved_rate = dict(graphics._state), dict(graphics._preview)
    graphics._state.update(choice=None, widget=None)
    graphics.prepare("halfcell")
    graphics.set_preview_rate("1K")  # a thousandth of what a pane of half-blocks costs per frame
    yield
    graphics._state.update(saved)
    graphics._preview.update(saved_rate)


async def test_previews_over_budget_are_skipped_and_the_final_image_always_drawn(halfcell_with_a_small_budget):
    frames = [Image.new("RGB", (64, 64), (i * 20, 0, 0)) for i in range(6)]
    final = Image.new("RGB", (512, 512), (0, 200, 0))
    app = PaneApp()
    async with app.run_test(size=(100, 40)) as pilot:
        pane = app.query_one(ImagePane)
        await pilot.pause()
        drawn = []
        for index, frame in enumerate(frames):
            pane.show(frame, f"preview · step {index + 1}/6", preview=True)
            await pilot.pause()
            meter.frame(40 * 60 * 38)  # headless Textual writes nothing: as if it wrote a 60×38-cell half-block frame sends
            drawn.append(app.query_one("#picture").image is frame)
        assert drawn[0] and not any(drawn[1:])  # after the first frame the 1 KB/s budget is spent
        assert pane.image is frames[-1] and pane.caption == "preview · step 6/6"  # ctrl+f and the caption move on
        assert graphics.preview_budget().dropped == 5
        pane.show(final, "seed 1 · 512×512")
        await pilot.pause()
        assert app.query_one("#picture").image is final
        assert meter.last("preview") == 40 * 60 * 38
        assert "5 preview frames skipped" in dict(graphics.describe_lines())["previews"]


def test_kitty_pictures_go_at_their_own_size_through_tmux_and_are_freed(monkeypatch):
    """The kitty protocol (sw.kovidgoyal.net/kitty/graphics-protocol): f=100 PNG data in base64 chunks,
    a=p,U=1 a virtual placement for Unicode placeholders, a=d,d=I,i=ID deletes that image and frees it."""
    import base64
    import io
    import sys

    from textual_image.renderable.tgp import Image as Renderable

    from picotui.ui.image_widgets import tgp_class

    written = io.StringIO()
    monkeypatch.setattr(sys, "__stdout__", written)
    preview = Image.new("RGB", (64, 64), (10, 20, 30))
    renderable = tgp_class(Renderable, passthrough=True)(preview)
    renderable._send_image_to_terminal(460, 460)  # the cells it fills: 460 px, the terminal scales it
    renderable._create_virtual_placement(46, 23)
    image_id = renderable.terminal_image_id
    renderable.cleanup()
    wrapped = written.getvalue().split("\x1bPtmux;")
    assert wrapped[0] == "" and all(w.endswith("\x1b\\") for w in wrapped[1:])  # nothing goes out unwrapped
    inner = [w[:-2].replace("\x1b\x1b", "\x1b") for w in wrapped[1:]]
    assert all(s.startswith("\x1b_G") and s.endswith("\x1b\\") for s in inner)
    data = "".join(s.split(";", 1)[1][:-2] for s in inner if "f=100" in s)
    assert Image.open(io.BytesIO(base64.b64decode(data))).size == (64, 64)
    assert f"a=p,i={image_id},c=46,r=23,U=1" in inner[-2]
    assert inner[-1].startswith(f"\x1b_Ga=d,d=I,i={image_id}")


def _data_start(sixel: str) -> int:
    """Where the pixel data begins: the first sixel data character (? to ~) or repeat (!) after the raster."""
    import re

    raster = re.search(r'"\d+;\d+;\d+;\d+', sixel)
    body = re.sub(r"#\d+(;2;\d+;\d+;\d+)?", lambda m: "\0" * len(m.group(0)), sixel[raster.end():])
    return raster.end() + re.search(r"[?-~!]", body).start()


@pytest.fixture
def sixel_widget():
    saved = dict(graphics._state)
    graphics._state.update(choice=None, widget=None)
    graphics.prepare("sixel")
    yield graphics.image_widget()
    graphics._state.update(saved)


async def test_sixel_pictures_define_every_colour_before_the_first_pixel(sixel_widget):
    """xterm draws the first band speckled when colour registers are defined in it (textual-image defines
    each on first use); the pictures picotui sends define them all up front, and lose nothing."""
    import re

    from textual_image._sixel import image_to_sixels

    picture = Image.new("RGB", (64, 64))
    for x in range(64):
        for y in range(64):
            picture.putpixel((x, y), (x * 4, y * 4, (x * y) % 256))
    app = PaneApp()
    async with app.run_test(size=(100, 40)) as pilot:
        app.query_one(ImagePane).show(picture, "final")
        await pilot.pause(0.3)
        impl = app.query_one("#picture").children[0]
        sent = impl._cached_sixels.sixel_data
    start = _data_start(sent)
    definitions = re.findall(r"#\d+;2;\d+;\d+;\d+", sent)
    assert definitions and all(sent.index(d) < start for d in definitions)
    # nothing lost: the same colours and the same pixel commands as textual-image's own encoding
    from textual_image.widget.sixel import _ImageSixelImpl

    own = _ImageSixelImpl._image_to_sixels(impl, picture, None, (0, 0, 0, 1.0))
    ours = impl._image_to_sixels(picture, None, (0, 0, 0, 1.0))
    assert sorted(re.findall(r"#\d+;2;\d+;\d+;\d+", own)) == sorted(re.findall(r"#\d+;2;\d+;\d+;\d+", ours))
    bare = lambda s: re.sub(r"(#\d+);2;\d+;\d+;\d+", r"\1", s)  # noqa: E731
    head = re.match(r'.*?"\d+;\d+;\d+;\d+', own, re.S).group(0)
    registers = "".join("#" + n for n in re.findall(r"#(\d+);2;", own))
    assert bare(ours) == head + registers + bare(own)[len(head):]  # definitions moved up, pixels untouched
