"""Hashes shared between Library instances (the TUI's and the worker's), A1111's addnet LoRA hash and the
TI hash, and hashing a job's files in the background."""

from __future__ import annotations

import json
import threading

import pytest
from library_support import CASES, addnet, calls, library_tree, write  # noqa: F401  (calls is a fixture)
from library_support import sha256 as sha

from picotui.engine.errors import ModelError
from picotui.engine.models import hashing
from picotui.engine.models.library import Library


@pytest.fixture
def tree(tmp_path):
    return library_tree(tmp_path)


# ---- two instances, one hash -----------------------------------------------------------------------

def test_a_second_library_instance_does_not_hash_the_same_file_again(tree, tmp_path, calls):
    tui, worker = Library(tree, tmp_path / "cache"), Library(tree, tmp_path / "cache")  # both load an empty cache
    mf = tui.resolve("dreamshaper_8", "checkpoint")
    assert tui.autov2(mf) == sha(mf.path)[:10]
    assert worker.cached_autov2(mf) == sha(mf.path)[:10]  # it re-read hashes.json when it changed
    assert worker.autov2(mf) == sha(mf.path)[:10]
    assert calls == [("sha256", "dreamshaper_8.safetensors")]


def test_two_instances_asking_at_the_same_time_hash_once(tree, tmp_path, calls):
    libraries = [Library(tree, tmp_path / "cache") for _ in range(4)]
    mf = libraries[0].resolve("style", "lora")
    start = threading.Barrier(len(libraries))
    results = []

    def ask(library):
        start.wait()
        results.append(library.lora_hash(mf))

    threads = [threading.Thread(target=ask, args=(lib,)) for lib in libraries]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == [addnet(mf.path)[:12]] * 4
    assert calls.count(("addnet", "style.safetensors")) == 1


def test_saves_merge_with_what_another_instance_wrote(tree, tmp_path, calls):
    a, b = Library(tree, tmp_path / "cache"), Library(tree, tmp_path / "cache")
    ckpt, vae = a.resolve("dreamshaper_8", "checkpoint"), a.resolve("vae-ft-mse", "vae")
    a.autov2(ckpt)
    b.autov2(vae)  # b's save must keep a's entry
    on_disk = json.loads((tmp_path / "cache" / "hashes.json").read_text())
    assert sorted(e["sha256"] for e in on_disk.values()) == sorted([sha(ckpt.path), sha(vae.path)])
    fresh = Library(tree, tmp_path / "cache")
    assert fresh.autov2(ckpt) == sha(ckpt.path)[:10] and fresh.autov2(vae) == sha(vae.path)[:10]
    assert len(calls) == 2


def test_a_stale_entry_in_memory_never_overwrites_a_newer_one_on_disk(tree, tmp_path):
    a, b = Library(tree, tmp_path / "cache"), Library(tree, tmp_path / "cache")
    mf = a.resolve("style", "lora")
    a.autov2(mf)
    b.autov2(mf)  # b knows the old file now
    write(mf.path, CASES["peft.safetensors"][0])  # replaced by another download
    new = a.autov2(mf)
    b.autov2(b.resolve("dreamshaper_8", "checkpoint"))  # b saves something else afterwards
    assert Library(tree, tmp_path / "cache").cached_autov2(mf) == new == sha(mf.path)[:10]


# ---- A1111's LoRA and TI hashes --------------------------------------------------------------------

def test_lora_hash_is_a1111s_addnet_hash_of_the_tensor_data(tree, tmp_path, calls):
    library = Library(tree, tmp_path / "cache")
    mf = library.resolve("style", "lora")
    assert library.lora_hash(mf) == addnet(mf.path)[:12] != sha(mf.path)[:12]
    assert library.lora_hash(mf) == addnet(mf.path)[:12]
    assert calls == [("addnet", "style.safetensors")]  # cached under its own key, not as the file's sha256
    assert library.cached_autov2(mf) is None
    keys = list(json.loads((tmp_path / "cache" / "hashes.json").read_text()))
    assert keys == ["addnet:" + str(mf.path.resolve())]


def test_editing_only_the_metadata_keeps_the_addnet_hash(tmp_path):
    import torch
    from safetensors.torch import save_file

    tensors = {"lora_unet_x.lora_down.weight": torch.ones(4, 8), "lora_unet_x.lora_up.weight": torch.zeros(8, 4)}
    one, two = tmp_path / "one.safetensors", tmp_path / "two.safetensors"
    save_file(tensors, str(one), metadata={"ss_output_name": "one"})
    save_file(tensors, str(two), metadata={"ss_output_name": "a much longer name", "note": "x" * 100})
    assert sha(one) != sha(two)
    cache = hashing.HashCache(tmp_path / "hashes.json")
    assert cache.digest(one, "addnet") == cache.digest(two, "addnet") == addnet(one)


def test_a_recorded_sshs_model_hash_wins_as_in_a1111(tmp_path):
    import torch
    from safetensors.torch import save_file

    root = tmp_path / "models"
    (root / "loras").mkdir(parents=True)
    recorded = "ab" * 32
    save_file({"lora_unet_x.lora_down.weight": torch.ones(4, 8), "lora_unet_x.lora_up.weight": torch.ones(8, 4)},
              str(root / "loras" / "trained.safetensors"), metadata={"sshs_model_hash": recorded.upper()})
    library = Library(root, tmp_path / "cache")
    mf = library.resolve("trained", "lora")
    assert library.lora_hash(mf) == recorded[:12]
    assert library.find_by_hash(recorded[:12], "lora") == mf  # readable back without hashing anything


def test_a_pickled_lora_is_named_by_its_files_sha256(tree, tmp_path):
    (tree / "loras" / "old.pt").write_bytes(b"\x80\x04not really a pickle")
    library = Library(tree, tmp_path / "cache", allow_pickle=True)
    mf = library.resolve("old", "lora")
    assert library.lora_hash(mf) == sha(mf.path)[:12]


def test_ti_hash_is_12_digits_of_the_files_sha256(tree, tmp_path):
    library = Library(tree, tmp_path / "cache")
    mf = library.resolve("easyneg", "embedding")
    assert library.ti_hash(mf) == sha(mf.path)[:12]
    assert library.cached_autov2(mf) == sha(mf.path)[:10]  # one hash, one cache entry, both lengths


def test_find_by_hash_knows_a_loras_addnet_hash_once_computed(tree, tmp_path):
    library = Library(tree, tmp_path / "cache")
    mf = library.resolve("style", "lora")
    short = addnet(mf.path)[:12]
    assert library.find_by_hash(short, "lora") is None  # nothing is hashed to find out
    library.lora_hash(mf)
    assert library.find_by_hash(short, "lora") == mf
    assert library.find_by_hash(short, "checkpoint") is None


def test_a_vanished_lora_is_a_one_line_model_error(tree, tmp_path):
    library = Library(tree, tmp_path / "cache")
    mf = library.resolve("style", "lora")
    mf.path.unlink()
    with pytest.raises(ModelError, match=r"^Could not hash style.safetensors .*readable\.$"):
        library.lora_hash(mf)


# ---- a job's files in the background ---------------------------------------------------------------

def test_background_hashing_of_chosen_files_leaves_the_save_nothing_to_read(tree, tmp_path, calls):
    library = Library(tree, tmp_path / "cache")
    ckpt, lora = library.resolve("dreamshaper_8", "checkpoint"), library.resolve("style", "lora")
    thread = library.start_hashing(files=[ckpt, None, lora])  # no callback needed; None: no VAE chosen
    # asking at once waits for the background thread's result instead of reading the file again
    assert library.autov2(ckpt) == sha(ckpt.path)[:10]
    assert library.lora_hash(lora) == addnet(lora.path)[:12]
    thread.join(30)
    assert sorted(calls) == [("addnet", "style.safetensors"), ("sha256", "dreamshaper_8.safetensors"),
                             ("sha256", "style.safetensors")]
    assert library.cached_autov2(library.resolve("vae-ft-mse", "vae")) is None  # not asked for
