"""sniff(): kind and family from the safetensors header alone, and a one-line reason for every broken file.

Files are written at test time with the safetensors library, with the key names and the shapes that tell
families apart (cross-attention width, input channels, LoRA/VAE/embedding layouts); tensors are tiny.
"""

from __future__ import annotations

import os
import random
import struct

import pytest
from library_support import CASES, TO_K, sd1, write
from library_support import raw_safetensors as _raw

from picotui.engine.models.library import sniff


@pytest.mark.parametrize("name", CASES)
def test_kind_and_family_from_the_header(tmp_path, name):
    shapes, kind, family, usable = CASES[name]
    mf = sniff(write(tmp_path / name, shapes))
    assert (mf.kind, mf.family, mf.usable) == (kind, family, usable), mf.reason
    assert mf.size == (tmp_path / name).stat().st_size and mf.name == name
    if usable:
        assert mf.reason is None
    else:
        assert mf.reason and "\n" not in mf.reason and name in mf.reason


def test_context_dim_is_reported(tmp_path):
    assert sniff(write(tmp_path / "a.safetensors", sd1(ctx=32))).context_dim == 32
    assert sniff(write(tmp_path / "b.safetensors", sd1())).context_dim == 768
    assert sniff(write(tmp_path / "e.safetensors", {"emb_params": (5, 768)})).vectors == 5


def test_sniff_reads_only_the_header(tmp_path, monkeypatch):
    """A 'checkpoint' whose tensor bytes are garbage still sniffs: the data is never looked at."""
    path = write(tmp_path / "m.safetensors", sd1())
    data = bytearray(path.read_bytes())
    (n,) = struct.unpack("<Q", data[:8])
    data[8 + n:] = os.urandom(len(data) - 8 - n)
    path.write_bytes(bytes(data))
    assert sniff(path).usable


def test_real_files_from_the_shared_fixtures(models_root, tiny_checkpoint):
    """The LDM checkpoint, VAE, kohya and peft LoRAs and TI embedding the other tests load for real."""
    from conftest import DIFFUSERS_LORA, EMBEDDING, KOHYA_LORA, TINY_VAE

    got = {p: sniff(p) for p in (tiny_checkpoint, models_root / "vae" / TINY_VAE, models_root / "loras" / KOHYA_LORA,
                                 models_root / "loras" / DIFFUSERS_LORA, models_root / "embeddings" / EMBEDDING)}
    assert [(m.kind, m.family, m.usable) for m in got.values()] == [
        ("checkpoint", "SD1.x", True), ("vae", "SD1.x", True), ("lora", "SD1.x", True), ("lora", "SD1.x", True),
        ("embedding", "SD1.x", True)]
    assert got[tiny_checkpoint].folder == "checkpoints"


# ---- broken files: usable=False and one line, never an exception ------------------------------------------

def _broken(path, *words):
    mf = sniff(path)
    assert not mf.usable and mf.kind == "unknown", mf
    assert mf.reason and "\n" not in mf.reason and len(mf.reason) < 300
    for word in words:
        assert word in mf.reason.lower(), mf.reason
    return mf


def test_zero_byte_file(tmp_path):
    (tmp_path / "empty.safetensors").write_bytes(b"")
    assert _broken(tmp_path / "empty.safetensors", "empty", "download").size == 0


def test_truncated_download(tmp_path):
    path = write(tmp_path / "full.safetensors", sd1())
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(path.read_bytes()[:-10])
    _broken(cut, "truncated", "download")
    (tmp_path / "tiny.safetensors").write_bytes(path.read_bytes()[:5])
    _broken(tmp_path / "tiny.safetensors", "too small")
    (tmp_path / "mid-header.safetensors").write_bytes(path.read_bytes()[:40])
    _broken(tmp_path / "mid-header.safetensors", "truncated")


def test_header_that_lies_about_sizes(tmp_path):
    entry = {"dtype": "F16", "shape": [8, 768], "data_offsets": [0, 100]}  # needs 12288 bytes
    _broken(_raw(tmp_path / "lies.safetensors", {TO_K: entry}, b"\0" * 100), "lies about sizes")
    entry = {"dtype": "F16", "shape": [8, 768], "data_offsets": [0, 8 * 768 * 2]}
    _broken(_raw(tmp_path / "short.safetensors", {TO_K: entry}, b"\0" * 100), "truncated")
    _broken(_raw(tmp_path / "len.safetensors", {TO_K: entry}, length=2**62), "not a .safetensors")
    _broken(_raw(tmp_path / "long.safetensors", {TO_K: entry}, length=10**6), "truncated")
    bad = {"dtype": "F16", "shape": [8, -1], "data_offsets": [0, 16]}
    _broken(_raw(tmp_path / "neg.safetensors", {TO_K: bad}, b"\0" * 16), "malformed")
    backwards = {"dtype": "F16", "shape": [1], "data_offsets": [4, 2]}
    _broken(_raw(tmp_path / "back.safetensors", {TO_K: backwards}, b"\0" * 4), "malformed")


def test_not_json_or_not_an_object(tmp_path):
    p = tmp_path / "html.safetensors"
    p.write_text("<html>404 Not Found</html>" * 3)
    _broken(p, "not a .safetensors")
    p = tmp_path / "badjson.safetensors"
    p.write_bytes(struct.pack("<Q", 5) + b"{nope")
    _broken(p, "damaged header")
    _broken(_raw(tmp_path / "list.safetensors", [1, 2]), "damaged header")  # type: ignore[arg-type]
    _broken(_raw(tmp_path / "none.safetensors", {"__metadata__": {"a": "b"}}), "no tensors")


@pytest.mark.parametrize("seed", range(20))
def test_random_bytes_named_safetensors(tmp_path, seed):
    rng = random.Random(seed)
    path = tmp_path / f"random{seed}.safetensors"
    path.write_bytes(rng.randbytes(rng.randint(1, 4096)))
    _broken(path)


def test_a_directory_named_like_a_model(tmp_path):
    (tmp_path / "model.safetensors").mkdir()
    _broken(tmp_path / "model.safetensors", "folder")


def test_symlink_loop_and_dangling_link(tmp_path):
    os.symlink(tmp_path / "b.safetensors", tmp_path / "a.safetensors")
    os.symlink(tmp_path / "a.safetensors", tmp_path / "b.safetensors")
    _broken(tmp_path / "a.safetensors", "loops")
    os.symlink(tmp_path / "gone.safetensors", tmp_path / "dangling.safetensors")
    _broken(tmp_path / "dangling.safetensors", "no longer exists")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can read any file")
def test_unreadable_file(tmp_path):
    path = write(tmp_path / "locked.safetensors", sd1())
    path.chmod(0)
    try:
        _broken(path, "permission")
    finally:
        path.chmod(0o644)


def test_pickles_need_the_opt_in_and_take_their_kind_from_the_folder(tmp_path):
    (tmp_path / "loras").mkdir()
    path = tmp_path / "loras" / "old.pt"
    path.write_bytes(b"\x80\x04not really a pickle")
    mf = sniff(path)
    assert (mf.kind, mf.family, mf.usable, mf.folder) == ("lora", "unknown (pickle)", False, "loras")
    assert "--allow-pickle" in mf.reason and "allow_pickle = true" in mf.reason
    assert sniff(path, allow_pickle=True).usable
    assert sniff(tmp_path / "loras" / "old.pt", "checkpoints").kind == "checkpoint"


def test_unreadable_file_simulated(tmp_path, monkeypatch):
    """The same path as a chmod 000 file, for runs as root (root reads anything): open() is refused."""
    from picotui.engine.models import headers

    path = write(tmp_path / "locked.safetensors", sd1())

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(headers, "open", refuse, raising=False)
    _broken(path, "permission")


def test_scanning_and_hashing_a_pickle_that_runs_code_never_runs_it(tmp_path):
    """The library only looks at a pickle's name and bytes (kind from the folder, hash of the file): even with
    the opt-in, listing, resolving and hashing it must not unpickle it."""
    import pickle

    from picotui.engine.models.library import Library

    marker = tmp_path / "owned"

    class RunsCode:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    payload = pickle.dumps({"state_dict": RunsCode()})
    for sub, name in (("checkpoints", "evil.ckpt"), ("loras", "evil.pt"), ("vae", "evil-vae.pt")):
        (tmp_path / "models" / sub).mkdir(parents=True)
        (tmp_path / "models" / sub / name).write_bytes(payload)
    library = Library(tmp_path / "models", tmp_path / "cache", allow_pickle=True)
    found = {mf.name: mf for mf in library.scan()}
    assert found["evil.ckpt"].kind == "checkpoint" and found["evil.pt"].kind == "lora"
    for name, kind in (("evil.ckpt", "checkpoint"), ("evil.pt", "lora"), ("evil-vae.pt", "vae")):
        assert len(library.autov2(library.resolve(name, kind))) == 10
    assert not marker.exists()
    pickle.loads(payload)  # the payload is real: unpickling it (what picotui never does) runs it
    assert marker.is_dir()
