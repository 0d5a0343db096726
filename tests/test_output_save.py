"""save_png: outputs/YYYY-MM-DD/NNNNN-SEED.png, atomic, never colliding, with both metadata chunks; failures
(read-only, disk full) leave no partial .png; list_outputs newest first."""

from __future__ import annotations

import datetime as dt
import errno
import os
import threading

import pytest
from PIL import Image

from picotui.engine.errors import SaveError
from picotui.engine.recipes import output
from picotui.engine.recipes.infotext import a1111_parameters
from picotui.engine.recipes.metadata import read_recipe
from picotui.engine.recipes.output import list_outputs, save_png
from picotui.engine.recipes.png_text import read_png_text
from picotui.engine.request import GenerationRequest, LoraSpec

DAY = dt.date(2024, 5, 17)
REQUEST = GenerationRequest(prompt="a corgi\nsecond line: (detail:1.2)", negative_prompt="blurry, ugly",
                            checkpoint="dreamshaper_8.safetensors", vae="vae-ft-mse.safetensors",
                            loras=(LoraSpec("style", 0.7),), sampler="Euler a", steps=12, cfg=6.5,
                            width=64, height=96, seed=4242, clip_skip=2)


def image(color=(200, 100, 50), size=(64, 96)):
    return Image.new("RGB", size, color)


def params(request=REQUEST) -> str:
    return a1111_parameters(request, model_name="dreamshaper_8", model_hash="879db523c3",
                            vae_name="vae-ft-mse.safetensors", vae_hash="735e4c3a44", lora_hashes={"style": "0123456789"})


def save(outputs, request=REQUEST, **kw):
    return save_png(image(), outputs, request, params(request), today=DAY, **kw)


def leftovers(folder):
    return sorted(p.name for p in folder.rglob("*") if p.is_file())


def test_saves_into_a_dated_folder_with_increasing_numbers(tmp_path):
    outputs = tmp_path / "outputs"  # missing: created
    first = save(outputs)
    second = save(outputs, GenerationRequest(seed=7))
    assert first == outputs / "2024-05-17" / "00001-4242.png"
    assert second == outputs / "2024-05-17" / "00002-7.png"
    assert save_png(image(), outputs, REQUEST, params()).parent.name == dt.date.today().isoformat()
    assert leftovers(outputs / "2024-05-17") == ["00001-4242.png", "00002-7.png"]  # no temp files


def test_png_round_trip_gives_the_same_request(tmp_path):
    path = save(tmp_path)
    with Image.open(path) as im:
        assert im.size == (64, 96) and im.getpixel((0, 0)) == (200, 100, 50)
    recipe = read_recipe(path)
    assert recipe.source == "picotui" and recipe.unmatched == []
    assert recipe.request == REQUEST and recipe.request.loras == REQUEST.loras
    assert recipe.parameters == params()
    texts = read_png_text(path)
    assert texts["parameters"] == params() and '"version": "0.1.0"' in texts["picotui"]


def test_non_latin1_prompts_survive(tmp_path):
    request = GenerationRequest(prompt="柴犬, 🐶, ünïcode", seed=1)
    path = save(tmp_path, request)
    assert read_recipe(path).request.prompt == "柴犬, 🐶, ünïcode"
    assert "柴犬" in read_png_text(path)["parameters"]


def test_numbers_continue_after_a_restart(tmp_path):
    day = tmp_path / "2024-05-17"
    day.mkdir()
    (day / "00041-123.png").write_bytes(b"older image")
    (day / "notes.txt").write_text("not an image")
    assert save(tmp_path).name == "00042-4242.png"


def test_two_threads_saving_at_once_never_share_a_name(tmp_path):
    barrier = threading.Barrier(4)
    saved, errors = [], []

    def worker(n):
        barrier.wait()
        for i in range(8):
            try:
                saved.append(save(tmp_path, GenerationRequest(seed=n * 100 + i)))
            except Exception as exc:  # noqa: BLE001 - the test reports it
                errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    numbers = sorted(int(p.name.split("-")[0]) for p in saved)
    assert numbers == list(range(1, 33))
    assert len({p.name for p in saved}) == 32 and len(leftovers(tmp_path)) == 32
    for p in saved:  # every file is complete and carries its own seed
        assert read_recipe(p).request.seed == int(p.stem.split("-")[1])


def test_a_name_taken_by_another_process_is_skipped(tmp_path, monkeypatch):
    day = tmp_path / "2024-05-17"
    day.mkdir()
    real = output.next_number

    def stale(folder):  # another process wrote 00001 after we looked
        n = real(folder)
        (folder / f"{n:05d}-999.png").write_bytes(b"theirs")
        return n

    monkeypatch.setattr(output, "next_number", stale)
    path = save(tmp_path)
    assert path.name == "00002-4242.png" and (day / "00001-999.png").read_bytes() == b"theirs"


def test_filesystems_without_hard_links_still_save_exclusively(tmp_path, monkeypatch):
    def no_links(src, dst):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(output.os, "link", no_links)
    a, b = save(tmp_path), save(tmp_path)
    assert (a.name, b.name) == ("00001-4242.png", "00002-4242.png")
    assert read_recipe(b).request == REQUEST and leftovers(tmp_path) == ["00001-4242.png", "00002-4242.png"]


@pytest.mark.parametrize("where", ["fsync", "link"])
def test_disk_full_leaves_no_partial_png(tmp_path, monkeypatch, where):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    save(tmp_path)  # an earlier image stays untouched
    monkeypatch.setattr(output.os, where, full)
    with pytest.raises(SaveError) as info:
        save(tmp_path)
    assert "disk is full" in str(info.value) and "\n" not in str(info.value)
    assert leftovers(tmp_path) == ["00001-4242.png"]


def test_read_only_filesystem_is_a_clear_error(tmp_path, monkeypatch):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(output.tempfile, "mkstemp", read_only)
    with pytest.raises(SaveError, match="read-only or no permission.*--outputs"):
        save(tmp_path / "outputs")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can write anywhere")
def test_read_only_folder(tmp_path):
    tmp_path.chmod(0o555)
    try:
        with pytest.raises(SaveError, match="read-only or no permission"):
            save(tmp_path / "outputs")
    finally:
        tmp_path.chmod(0o755)


@pytest.mark.parametrize("where", ["mkdir", "mkstemp"])
def test_read_only_folder_simulated(tmp_path, monkeypatch, where):
    """The same path as a chmod 555 folder, for runs as root (root writes anywhere): the OS refuses to create
    the day's folder, or the file in an existing one, with EACCES; nothing is left behind."""
    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    if where == "mkdir":
        monkeypatch.setattr(output.Path, "mkdir", refuse)
    else:
        (tmp_path / "outputs" / DAY.isoformat()).mkdir(parents=True)
        monkeypatch.setattr(output.tempfile, "mkstemp", refuse)
    with pytest.raises(SaveError, match="read-only or no permission.*--outputs") as info:
        save(tmp_path / "outputs")
    assert "\n" not in str(info.value)
    assert leftovers(tmp_path) == []


def test_outputs_path_that_is_a_file(tmp_path):
    (tmp_path / "outputs").write_text("oops")
    with pytest.raises(SaveError):
        save(tmp_path / "outputs")


def test_list_outputs_newest_first(tmp_path):
    older = [save_png(image(), tmp_path, GenerationRequest(seed=s), "x", today=dt.date(2024, 5, 16)) for s in (1, 2)]
    newer = [save(tmp_path, GenerationRequest(seed=s)) for s in (3, 4)]
    (tmp_path / "2024-05-17" / ".picotui-junk.part").write_bytes(b"")
    (tmp_path / "not-a-day").mkdir()
    (tmp_path / "not-a-day" / "00009-9.png").write_bytes(b"")
    assert list_outputs(tmp_path) == [newer[1], newer[0], older[1], older[0]]
    assert list_outputs(tmp_path / "missing") == []


def test_two_processes_saving_at_once_never_share_a_number(tmp_path):
    import subprocess
    import sys

    from cli_support import ROOT

    code = ("import sys, datetime as dt; from PIL import Image; from picotui.engine.recipes.output import save_png; "
            "from picotui.engine.request import GenerationRequest as R\n"
            "for i in range(10): save_png(Image.new('RGB', (8, 8)), sys.argv[1], R(seed=int(sys.argv[2]) + i), 'x', "
            "today=dt.date(2024, 5, 17))")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path), str(base)], env=env, cwd=ROOT,
                              stderr=subprocess.PIPE) for base in (0, 1000)]
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read()
    names = leftovers(tmp_path)
    assert sorted(int(n.split("-")[0]) for n in names) == list(range(1, 21))


def test_the_leftover_patterns_are_the_names_a_save_really_uses(tmp_path, monkeypatch):
    """Tests (and tidy-ups) look for output.TEMP_GLOBS: prove those are the temp/marker names in use, by
    looking at the folder at the moment the final name is claimed, and that an interrupted save leaves none."""
    import fnmatch

    seen = []
    real_link = os.link

    def snapshot_then_fail(src, dst):
        seen.extend(p.name for p in (tmp_path / "2024-05-17").iterdir())
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(output.os, "link", snapshot_then_fail)
    with pytest.raises(SaveError, match="save again"):
        save(tmp_path)
    monkeypatch.setattr(output.os, "link", real_link)
    temp = [n for n in seen if not n.endswith(".png")]
    assert len(temp) == 2  # the temp file and the number's marker
    assert all(any(fnmatch.fnmatch(n, g) for g in output.TEMP_GLOBS) for n in temp), temp
    assert output.partial_files(tmp_path) == [] and leftovers(tmp_path) == []
    (tmp_path / "2024-05-17" / ".picotui-crash.part").write_bytes(b"half")  # what a power cut could leave
    (tmp_path / "2024-05-17" / ".00007.reserved").write_bytes(b"")
    assert [p.name for p in output.partial_files(tmp_path)] == [".00007.reserved", ".picotui-crash.part"]


def test_a_cancel_before_the_name_is_claimed_writes_nothing(tmp_path):
    from picotui.engine.errors import JobCancelled

    with pytest.raises(JobCancelled):
        save(tmp_path, is_cancelled=lambda: True)
    assert leftovers(tmp_path) == []
    calls = []

    def cancel_on_second_check():  # the first check passes; the temp file is written; then the cancel
        calls.append(1)
        return len(calls) > 1

    with pytest.raises(JobCancelled):
        save(tmp_path, is_cancelled=cancel_on_second_check)
    assert len(calls) == 2 and leftovers(tmp_path) == []
    assert save(tmp_path, is_cancelled=lambda: False).name == "00001-4242.png"


def test_save_again_without_parameters_still_writes_the_recipe(tmp_path):
    """If the first try failed before the A1111 text was made (e.g. hashing the model failed)."""
    from picotui.engine.events import Finished

    event = Finished(1, image(), None, REQUEST, "", save_error="Could not save the image (...)")
    path = output.save_again(event, tmp_path, today=DAY)
    recipe = read_recipe(path)
    assert recipe.request == REQUEST
    assert "Seed: 4242" in read_png_text(path)["parameters"] and "Model: dreamshaper_8" in recipe.parameters


def test_saved_pngs_get_the_permissions_open_would_give(tmp_path):
    import os
    import stat

    from PIL import Image

    from picotui.engine.recipes.output import save_png
    from picotui.engine.request import GenerationRequest

    mask = os.umask(0o027)
    os.umask(mask)
    path = save_png(Image.new("RGB", (8, 8)), tmp_path, GenerationRequest(seed=3), "a corgi")
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask  # not mkstemp's private 0600
