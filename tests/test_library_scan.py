"""Library: scanning the four folders, resolving names with one-line refusals, the demo entry, AutoV2 hashes
cached on disk, background hashing, and `picotui models`."""

from __future__ import annotations

import hashlib
import json
import os
import threading

import pytest
from hang_guard import HANG_GUARD_S
from library_support import CASES, calls, library_tree, sd1, write  # noqa: F401  (calls is a fixture)

from picotui.engine.errors import ModelError
from picotui.engine.models.library import DEMO_FILE, Library


@pytest.fixture
def tree(tmp_path):
    """models/ as a user fills it, with a few mistakes in it."""
    root = library_tree(tmp_path)  # one usable file of each kind; the rest are a user's mistakes and oddities
    (root / "checkpoints" / "SD15").mkdir()
    write(root / "checkpoints" / "SD15" / "realistic.safetensors", sd1())
    write(root / "checkpoints" / "ponyXL.safetensors", CASES["sdxl.safetensors"][0])
    write(root / "checkpoints" / "v2-1_768.safetensors", CASES["sd21.safetensors"][0])
    write(root / "checkpoints" / "inpaint.safetensors", CASES["inpaint.safetensors"][0])
    write(root / "checkpoints" / "addDetail.safetensors", CASES["kohya.safetensors"][0])  # a LoRA in the wrong folder
    (root / "checkpoints" / "broken.safetensors").write_bytes(b"")
    (root / "checkpoints" / "folder.safetensors").mkdir()
    (root / "checkpoints" / "README.md").write_text("put checkpoints here")
    (root / "checkpoints" / ".hidden.safetensors").write_bytes(b"")
    write(tmp_path / "elsewhere.safetensors", sd1())  # outside the library: reachable by path only
    return root


def lib(tree, tmp_path) -> Library:
    return Library(tree, tmp_path / "cache")


def names(files):
    return sorted(mf.name for mf in files)


def test_scan_finds_each_file_once_with_the_demo_first(tree, tmp_path):
    files = lib(tree, tmp_path).scan()
    assert files[0].name == DEMO_FILE and files[0].folder == "demo" and files[0].usable
    assert names(files[1:]) == sorted([
        "dreamshaper_8.safetensors", "realistic.safetensors", "ponyXL.safetensors", "v2-1_768.safetensors",
        "inpaint.safetensors", "addDetail.safetensors", "broken.safetensors", "folder.safetensors",
        "vae-ft-mse.safetensors", "style.safetensors", "easyneg.safetensors"])


def test_files_by_kind(tree, tmp_path):
    library = lib(tree, tmp_path)
    assert names(library.files("checkpoint", usable_only=True)) == [
        "dreamshaper_8.safetensors", DEMO_FILE, "realistic.safetensors"]
    # unusable ones are listed too (the browser greys them out with the reason)
    assert {"ponyXL.safetensors", "broken.safetensors", "folder.safetensors"} <= set(names(library.files("checkpoint")))
    assert names(library.files("lora")) == ["addDetail.safetensors", "style.safetensors"]  # by content
    assert names(library.files("vae")) == ["vae-ft-mse.safetensors"]
    assert names(library.files("embedding")) == ["easyneg.safetensors"]


def test_rescan_finds_a_file_dropped_in(tree, tmp_path):
    library = lib(tree, tmp_path)
    library.scan()
    write(tree / "loras" / "new.safetensors", CASES["peft.safetensors"][0])
    assert "new.safetensors" not in names(library.files("lora"))
    library.scan()
    assert "new.safetensors" in names(library.files("lora"))


def test_resolve_by_name_stem_subfolder_and_path(tree, tmp_path):
    library = lib(tree, tmp_path)
    assert library.resolve("dreamshaper_8.safetensors", "checkpoint").name == "dreamshaper_8.safetensors"
    assert library.resolve("dreamshaper_8", "checkpoint").name == "dreamshaper_8.safetensors"
    assert library.resolve("DreamShaper_8", "checkpoint").name == "dreamshaper_8.safetensors"
    assert library.resolve("SD15/realistic", "checkpoint").name == "realistic.safetensors"
    outside = library.resolve(str(tmp_path / "elsewhere.safetensors"), "checkpoint")
    assert outside.usable and outside.folder == ""
    assert library.resolve("style", "lora").kind == "lora"


@pytest.mark.parametrize("query, kind, expected", [
    ("missingModel_v1", "checkpoint", "No checkpoint named missingModel_v1 in "),
    ("ponyXL", "checkpoint", "ponyXL.safetensors is an SDXL checkpoint; picotui runs SD1.5 checkpoints only."),
    ("v2-1_768", "checkpoint", "v2-1_768.safetensors is an SD2.x checkpoint; picotui runs SD1.5 checkpoints only."),
    ("inpaint", "checkpoint", "inpainting checkpoint"),
    ("style", "checkpoint", "style.safetensors is a LoRA, not a checkpoint: pick it in the LoRA list."),
    ("vae-ft-mse", "checkpoint", "vae-ft-mse.safetensors is a VAE, not a checkpoint: pick it in the VAE list."),
    ("easyneg", "lora", "is a textual-inversion embedding, not a LoRA: use its name in the prompt."),
    ("dreamshaper_8", "vae", "dreamshaper_8.safetensors is a checkpoint, not a VAE: pick it in the checkpoint list."),
    ("broken", "checkpoint", "empty (0 bytes)"),
    ("folder", "checkpoint", "is a folder"),
    ("/no/such/dir/model.safetensors", "checkpoint", "does not exist"),
    ("", "lora", "No LoRA chosen"),
])
def test_resolve_refuses_with_one_line(tree, tmp_path, query, kind, expected):
    with pytest.raises(ModelError) as info:
        lib(tree, tmp_path).resolve(query, kind)
    message = str(info.value)
    assert expected in message and "\n" not in message
    if query == "missingModel_v1":
        assert "picotui models" in message


def test_pickles_pass_resolve_for_the_loader_to_judge(tree, tmp_path):
    (tree / "checkpoints" / "old.ckpt").write_bytes(b"\x80\x04junk")
    library = lib(tree, tmp_path)
    mf = library.resolve("old", "checkpoint")
    assert (mf.kind, mf.family, mf.usable) == ("checkpoint", "unknown (pickle)", False)
    assert Library(tree, tmp_path / "cache", allow_pickle=True).resolve("old.ckpt", "checkpoint").usable


def test_demo_resolves_to_the_created_checkpoint(tree, cache_dir, demo_checkpoint):
    library = Library(tree, cache_dir)
    mf = library.resolve("demo", "checkpoint")
    assert mf.path == demo_checkpoint and (mf.kind, mf.family, mf.usable) == ("checkpoint", "SD1.x", True)
    assert library.resolve(DEMO_FILE, "checkpoint").path == demo_checkpoint
    assert library.scan()[0].size == demo_checkpoint.stat().st_size  # the entry shows the real file now


def test_scan_survives_symlink_loops_unreadable_folders_and_missing_folders(tmp_path):
    root = tmp_path / "models"
    (root / "checkpoints" / "sub").mkdir(parents=True)
    write(root / "checkpoints" / "sub" / "a.safetensors", sd1())
    os.symlink(root / "checkpoints", root / "checkpoints" / "sub" / "back")  # a folder cycle
    os.symlink(root / "checkpoints" / "x.safetensors", root / "checkpoints" / "y.safetensors")
    os.symlink(root / "checkpoints" / "y.safetensors", root / "checkpoints" / "x.safetensors")
    files = Library(root, tmp_path / "cache").scan()  # vae/, loras/, embeddings/ do not exist at all
    assert names(files[1:]) == ["a.safetensors", "x.safetensors", "y.safetensors"]
    loops = [mf for mf in files if mf.name in ("x.safetensors", "y.safetensors")]
    assert all(not mf.usable and "loops" in mf.reason for mf in loops)


def test_a_missing_models_root_is_just_empty(tmp_path):
    files = Library(tmp_path / "nothing", tmp_path / "cache").scan()
    assert [mf.name for mf in files] == [DEMO_FILE]


# ---- hashes --------------------------------------------------------------------------------------------------

def test_autov2_is_the_first_10_hex_of_sha256_and_is_cached_on_disk(tree, tmp_path, calls):
    library = lib(tree, tmp_path)
    mf = library.resolve("dreamshaper_8", "checkpoint")
    expected = hashlib.sha256(mf.path.read_bytes()).hexdigest()
    assert library.autov2(mf) == expected[:10]
    assert library.autov2(mf) == expected[:10]
    assert len(calls) == 1
    cache = json.loads((tmp_path / "cache" / "hashes.json").read_text())
    assert [e["sha256"] for e in cache.values()] == [expected]
    fresh = lib(tree, tmp_path)  # a restart: the file is not read again
    assert fresh.cached_autov2(mf) == expected[:10]
    assert fresh.autov2(mf) == expected[:10] and len(calls) == 1
    assert not [p for p in (tmp_path / "cache").iterdir() if p.name != "hashes.json"]  # no temp files left


def test_a_changed_file_is_hashed_again(tree, tmp_path, calls):
    library = lib(tree, tmp_path)
    mf = library.resolve("style", "lora")
    first = library.autov2(mf)
    write(mf.path, CASES["peft.safetensors"][0])  # replaced by another download
    os.utime(mf.path, ns=(1, 1))
    second = library.autov2(mf)
    assert first != second and len(calls) == 2
    assert second == hashlib.sha256(mf.path.read_bytes()).hexdigest()[:10]


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"x": 5}', ""])
def test_a_corrupt_cache_is_ignored(tree, tmp_path, content):
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "hashes.json").write_text(content)
    library = lib(tree, tmp_path)
    mf = library.resolve("style", "lora")
    assert library.autov2(mf) == hashlib.sha256(mf.path.read_bytes()).hexdigest()[:10]
    assert json.loads((tmp_path / "cache" / "hashes.json").read_text())  # rewritten as valid JSON


def test_hashing_a_vanished_file_is_a_model_error(tree, tmp_path):
    library = lib(tree, tmp_path)
    mf = library.resolve("style", "lora")
    mf.path.unlink()
    with pytest.raises(ModelError, match="Could not hash style.safetensors"):
        library.autov2(mf)


def test_background_hashing_reports_each_file(tree, tmp_path):
    library = lib(tree, tmp_path)
    got, lock = {}, threading.Lock()

    def on_hash(mf, digest):
        with lock:
            got[mf.name] = digest

    thread = library.start_hashing(on_hash)
    thread.join(timeout=HANG_GUARD_S)  # a hang guard (see hang_guard.py), not a speed check
    assert not thread.is_alive() and thread.daemon
    readable = [mf for mf in library.files() if mf.size and mf.path.is_file()]
    assert set(got) == {mf.name for mf in readable}
    for mf in readable:
        assert got[mf.name] == hashlib.sha256(mf.path.read_bytes()).hexdigest()[:10]
        assert library.cached_autov2(mf) == got[mf.name]


def test_find_by_hash_uses_cached_hashes_only(tree, tmp_path):
    library = lib(tree, tmp_path)
    mf = library.resolve("dreamshaper_8", "checkpoint")
    digest = hashlib.sha256(mf.path.read_bytes()).hexdigest()[:10]
    assert library.find_by_hash(digest) is None  # not hashed yet: nothing is read to find out
    library.autov2(mf)
    assert library.find_by_hash(digest).name == "dreamshaper_8.safetensors"


# ---- picotui models ------------------------------------------------------------------------------------------

def test_models_command_lists_kind_family_size_and_hash(tree, tmp_path, monkeypatch, capsys):
    from picotui.cli import main

    monkeypatch.setenv("PICOTUI_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PICOTUI_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("COLUMNS", "250")
    assert main(["--models", str(tree), "models"]) == 0
    out = capsys.readouterr().out
    digest = hashlib.sha256((tree / "vae" / "vae-ft-mse.safetensors").read_bytes()).hexdigest()[:10]
    row = next(line for line in out.splitlines() if "vae-ft-mse.safetensors" in line)
    assert "vae" in row and "SD1.x" in row and digest in row and "KB" in row
    row = next(line for line in out.splitlines() if "ponyXL" in line)
    assert "SDXL" in row and "SD1.5" in row
    assert main(["--models", str(tree), "models", "--no-hash", "--kind", "lora"]) == 0
    out = capsys.readouterr().out
    assert "style.safetensors" in out and "dreamshaper" not in out


def test_models_command_escapes_hostile_file_names(tmp_path, monkeypatch, capsys):
    from picotui.cli import main

    root = tmp_path / "models"
    (root / "loras").mkdir(parents=True)
    write(root / "loras" / "evil\x1b[2J\x07.safetensors", CASES["kohya.safetensors"][0])
    monkeypatch.setenv("PICOTUI_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PICOTUI_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("COLUMNS", "250")
    assert main(["--models", str(root), "models", "--no-hash"]) == 0
    captured = capsys.readouterr()
    assert "\x1b" not in captured.out + captured.err and "\x07" not in captured.out
    assert "evil\\x1b[2J\\x07" in captured.out


def test_non_utf8_file_names_are_listed_and_printed_safely(tmp_path, monkeypatch, capsys):
    from picotui.cli import main

    root = tmp_path / "models"
    (root / "checkpoints").mkdir(parents=True)
    raw = os.path.join(os.fsencode(root / "checkpoints"), b"caf\xe9.safetensors")
    write(os.fsdecode(raw), sd1())
    files = Library(root, tmp_path / "cache").scan()
    assert [mf.usable for mf in files] == [True, True] and files[1].name == "caf\udce9.safetensors"
    monkeypatch.setenv("PICOTUI_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PICOTUI_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("COLUMNS", "250")
    assert main(["--models", str(root), "models"]) == 0
    assert "caf\\udce9.safetensors" in capsys.readouterr().out


def test_an_unreadable_subfolder_is_a_problem_not_a_crash(tree, tmp_path, monkeypatch):
    from picotui.engine.models import library as library_module

    real = os.scandir

    def scandir(path):
        if str(path).endswith("SD15"):
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(library_module.os, "scandir", scandir)
    library = lib(tree, tmp_path)
    files = library.scan()
    assert "realistic.safetensors" not in names(files) and "dreamshaper_8.safetensors" in names(files)
    assert len(library.problems) == 1 and "SD15" in library.problems[0] and "permission" in library.problems[0].lower()
