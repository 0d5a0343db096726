"""img2img jobs through the real Worker on the tiny checkpoint: a PNG file in, the picture against diffusers' own
StableDiffusionImg2ImgPipeline (A1111's resize, step rule and noise written out independently), one encode per
job with each image's own noise, the source named in the recipe by its hash, relative paths, and every bad
source reaching the user as one line while the worker goes on."""

from __future__ import annotations

import hashlib
import struct
import zlib

import numpy as np
import pytest
from passes_support import (  # noqa: F401  (paths is a fixture)
    NEGATIVE,
    PROMPT,
    assert_same_picture,
    diffusers_source_img2img,
    paths,
    pngs,
    request,
    steps_by_pass,
)
from PIL import Image
from worker_support import run, start_worker

from picotui.engine.events import Failed, Finished, Notice

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def worker(paths):
    w = start_worker(paths)
    yield w
    w.shutdown()


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """Pictures to start from, good and bad, in one folder."""
    folder = tmp_path_factory.mktemp("sources")
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:80, 0:96]
    base = np.stack([x * 2.5, y * 3.0, (x + y) * 1.4], axis=-1) + rng.normal(0, 12, (80, 96, 3))
    Image.fromarray(np.clip(base, 0, 255).astype(np.uint8)).save(folder / "source.png")
    Image.new("RGB", (1, 1), (200, 10, 10)).save(folder / "dot.png")
    frames = [Image.new("RGB", (64, 64), c) for c in ((200, 40, 40), (40, 40, 200))]
    frames[0].save(folder / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    Image.new("CMYK", (64, 64), (0, 120, 200, 10)).save(folder / "print.jpg")
    (folder / "notes.png").write_text("not a picture")
    # a 20000x20000 PNG header over a few bytes of data: refused from the header, nothing decoded
    header = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    (folder / "huge.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                                      + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
    return folder


def img2img(source, **kw):
    return request(**{"init_image": str(source), "denoising_strength": 0.5, "steps": 4, **kw})


def test_img2img_from_a_png_is_diffusers_img2img_and_the_recipe_names_the_source(worker, sources, tiny_components,
                                                                                  monkeypatch):
    from diffusers import AutoencoderKL

    from picotui.engine.recipes.metadata import read_recipe

    encodes = []
    real = AutoencoderKL.encode
    monkeypatch.setattr(AutoencoderKL, "encode", lambda self, *a, **k: encodes.append(1) or real(self, *a, **k))
    source = sources / "source.png"
    job = run(worker, img2img(source, batch_count=2))
    assert not worker.events.of(Failed, job)
    done = worker.events.of(Finished, job)
    assert [d.request.seed for d in done] == [7, 8] and len(encodes) == 1  # encoded once for the batch
    # A1111's default img2img rule: int(0.5 * 4) + 1 = 3 steps of a 4-step schedule, one pass, per image
    assert steps_by_pass(worker.events, job) == {"": [(1, 3, 1, 1), (2, 3, 1, 1), (3, 3, 1, 1)] * 2}
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:10]
    fitted = Image.open(source).convert("RGB").resize((64, 64), Image.Resampling.LANCZOS)  # "Just resize"
    for d in done:
        assert d.image.size == (64, 64) and d.path.is_file()
        recipe = read_recipe(d.path).request
        assert (recipe.init_image, recipe.init_image_hash) == (str(source), digest)
        expected = diffusers_source_img2img(tiny_components, fitted, steps=4, strength=0.5, prompt=PROMPT,
                                            negative=NEGATIVE, seed=d.request.seed, cfg=6.0)
        assert_same_picture(d.image, expected)
    assert np.abs(np.asarray(done[0].image).astype(int) - np.asarray(done[1].image).astype(int)).mean() > 1


def test_a_relative_path_is_read_from_the_current_directory_and_strength_1_redraws_all(worker, sources, monkeypatch):
    monkeypatch.chdir(sources)
    digest = hashlib.sha256((sources / "source.png").read_bytes()).hexdigest()[:10]
    job = run(worker, img2img("source.png", resize_mode="Just resize (latent upscale)", denoising_strength=1.0,
                              init_image_hash="0123456789"))  # a recipe made from another picture
    (done,) = worker.events.of(Finished, job)
    assert done.image.size == (64, 64) and done.request.init_image == "source.png"
    assert done.request.init_image_hash == digest
    assert [n.message for n in worker.events.of(Notice, job)] == [
        f"source.png is not the picture this recipe was made from (hash 0123456789, now {digest}): the result will "
        f"differ."]
    assert [s[:2] for s in steps_by_pass(worker.events, job)[""]] == [(1, 4), (2, 4), (3, 4), (4, 4)]  # int(.999*4)+1


@pytest.mark.parametrize("name, strength, says", [
    ("dot.png", 0.5, "dot.png is only 1x1 pixels"),
    ("huge.png", 0.5, "huge.png is 400,000,000 pixels; picotui opens pictures up to 8192"),
    ("notes.png", 0.5, "notes.png is not a picture"),
    ("gone.png", 0.5, "Source image"),
    ("source.png", 0.0, "Denoising strength 0 would give back the source picture unchanged"),
])
def test_a_bad_source_fails_in_one_line_and_writes_nothing(worker, paths, sources, name, strength, says):
    before = pngs(paths)
    job = run(worker, img2img(sources / name, denoising_strength=strength))
    (failed,) = worker.events.of(Failed, job)
    assert failed.kind == "invalid-request" and failed.message.startswith(says) and "\n" not in failed.message
    assert pngs(paths) == before


@pytest.mark.parametrize("name, says", [("anim.gif", "anim.gif is animated (2 frames): using its first frame."),
                                        ("print.jpg", "print.jpg is a CMYK (print) picture")])
def test_an_animated_or_cmyk_source_is_used_with_one_notice(worker, sources, name, says):
    job = run(worker, img2img(sources / name, steps=2))
    (notice,) = [n.message for n in worker.events.of(Notice, job) if n.message.startswith(name)]
    assert notice.startswith(says) and "\n" not in notice
    (done,) = worker.events.of(Finished, job)
    assert done.image.size == (64, 64) and done.path.is_file()
