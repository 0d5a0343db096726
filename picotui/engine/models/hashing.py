"""The hashes A1111 and civitai name model files by, streamed in chunks and cached on disk so a 2-4 GB
checkpoint is read once, ever.

* "sha256": the whole file's SHA-256. Its first 10 hex digits are the AutoV2 hash A1111 writes as
  "Model hash" / "VAE hash"; its first 12 are A1111's "TI hashes" (and "Lora hashes" for non-safetensors).
* "addnet": SHA-256 of a .safetensors file's tensor data only (everything after the 8-byte length and the
  JSON header), A1111's `addnet_hash_safetensors` and civitai's AutoV3. A1111 writes its first 12 hex
  digits as a .safetensors LoRA's "Lora hashes" entry; editing only the metadata does not change it.

The cache is one JSON file: key = the file's resolved path ("addnet:" + path for addnet hashes), and an
entry counts only while the file's size and mtime still match, so a replaced file is hashed again.
Several HashCache objects may share the file (the TUI's and the worker's libraries, another picotui
process): lookups re-read it when it changed on disk, writes merge with what is there (atomic temp file
+ os.replace), and within one process a file is hashed by one thread at a time, whichever cache asked.
A corrupt or unreadable cache is ignored, never fatal.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Callable
from contextlib import contextmanager, suppress
from pathlib import Path

CHUNK = 4 * 1024 * 1024
AUTOV2_LENGTH = 10
SHORT_LENGTH = 12  # A1111's "shorthash" of LoRAs and embeddings
HASH_KINDS = ("sha256", "addnet")

StopFn = Callable[[], bool]


def _digest_from(fh, should_stop: StopFn) -> str | None:
    digest = hashlib.sha256()
    while chunk := fh.read(CHUNK):
        if should_stop():
            return None
        digest.update(chunk)
    return digest.hexdigest()


def sha256_file(path: Path, should_stop: StopFn = lambda: False) -> str | None:
    """The file's SHA-256 (hex), read in chunks (constant memory). None if `should_stop()` turned true."""
    with open(path, "rb") as fh:
        return _digest_from(fh, should_stop)


def addnet_sha256_file(path: Path, should_stop: StopFn = lambda: False) -> str | None:
    """SHA-256 of what follows a .safetensors header, read as A1111 does: take the 8-byte little-endian
    header length n, seek to n + 8, hash the rest (nothing, if n points past the end)."""
    with open(path, "rb") as fh:
        n = int.from_bytes(fh.read(8), "little")
        fh.seek(n + 8)
        return _digest_from(fh, should_stop)


def _hasher(kind: str) -> Callable[..., str | None]:
    if kind not in HASH_KINDS:
        raise ValueError(f"unknown hash kind {kind!r}")
    return sha256_file if kind == "sha256" else addnet_sha256_file  # looked up per call: tests count calls



def stat_key(path: Path) -> tuple[str, int, int]:
    """A file's identity on disk: a replaced file (new size or mtime) is a different file."""
    st = os.stat(path)
    return str(Path(path).resolve()), st.st_size, st.st_mtime_ns


def _cache_key(resolved: str, kind: str) -> str:
    return resolved if kind == "sha256" else f"{kind}:{resolved}"  # bare paths: caches from before addnet


_BUSY: dict[str, threading.Lock] = {}  # cache key -> lock, shared by every HashCache in this process
_BUSY_GUARD = threading.Lock()


class HashCache:
    """path -> {size, mtime_ns, sha256} on disk, shared safely with other instances and processes."""

    def __init__(self, file: Path):
        self.file = Path(file)
        self._lock = threading.Lock()
        self._entries: dict = {}
        self._stamp = None  # (mtime_ns, size, inode) of the cache file when last read
        self._refresh()

    def _read(self) -> dict:
        try:
            data = json.loads(self.file.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            return {}  # missing or corrupt: start over (the hashes can always be recomputed)
        if not isinstance(data, dict):
            return {}
        return {k: v for k, v in data.items() if isinstance(v, dict) and isinstance(v.get("sha256"), str)}

    def _disk_stamp(self):
        try:
            st = os.stat(self.file)
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size, st.st_ino  # os.replace gives every write a new inode

    def _refresh(self) -> None:
        """Take in what other instances wrote since we last looked; disk wins where both know a file."""
        stamp = self._disk_stamp()  # before reading: a write in between only causes one more re-read
        with self._lock:
            if stamp == self._stamp:
                return
        disk = self._read() if stamp is not None else {}
        with self._lock:
            self._entries = {**self._entries, **disk}
            self._stamp = stamp

    def lookup(self, path: Path, kind: str = "sha256") -> str | None:
        """The cached hash if the file is unchanged since it was hashed; None otherwise. Never reads `path`."""
        try:
            resolved, size, mtime = stat_key(path)
        except OSError:
            return None
        self._refresh()
        with self._lock:
            entry = self._entries.get(_cache_key(resolved, kind))
        if entry and entry.get("size") == size and entry.get("mtime_ns") == mtime:
            return entry["sha256"]
        return None

    def digest(self, path: Path, kind: str = "sha256", should_stop: StopFn = lambda: False) -> str | None:
        """Cached or computed hash of `path` (kind "sha256" or "addnet"). None if stopped; OSError when the
        file cannot be read."""
        path = Path(path)
        key = _cache_key(str(path.resolve()), kind)
        with _BUSY_GUARD:
            busy = _BUSY.setdefault(key, threading.Lock())
        with busy:  # another caller for the same file, from any cache, waits for the first, then hits the cache
            cached = self.lookup(path, kind)
            if cached:
                return cached
            before = stat_key(path)
            digest = _hasher(kind)(path, should_stop)
            if digest is None:
                return None
            if stat_key(path) != before:
                return digest  # changed while we read it: do not cache a hash of a moving target
            self._save(key, {"size": before[1], "mtime_ns": before[2], "sha256": digest})
            return digest

    def _save(self, key: str, entry: dict) -> None:
        """Write `entry` into the file on disk, keeping what other instances put there, atomically."""
        with self._lock, _folder_lock(self.file.parent):
            stamp = self._disk_stamp()
            merged = {**self._entries, **self._read(), key: entry}
            self._entries = merged
            try:
                self.file.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(prefix=".hashes-", suffix=".tmp", dir=self.file.parent)
                try:
                    with os.fdopen(fd, "w", encoding="utf-8") as fh:
                        json.dump(merged, fh, indent=0, sort_keys=True)
                        fh.flush()
                        os.fsync(fh.fileno())
                    os.replace(tmp, self.file)
                except BaseException:
                    with suppress(OSError):  # the temp file is junk now; the error that matters is re-raised
                        os.unlink(tmp)
                    raise
            except OSError:
                self._stamp = stamp
                return  # a read-only cache dir costs a re-hash next time, nothing more
            self._stamp = self._disk_stamp()  # our own write holds nothing new to re-read


@contextmanager
def _folder_lock(folder: Path):
    """An exclusive flock on the cache folder while one process reads, merges and replaces the file, so
    two processes saving at once cannot drop each other's entries. Best effort: without it (no fcntl, or
    the folder cannot be opened) a lost entry only costs a re-hash."""
    fd = None
    try:
        import fcntl

        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder, os.O_RDONLY)
        fcntl.flock(fd, fcntl.LOCK_EX)
    except (ImportError, OSError):
        pass
    try:
        yield
    finally:
        if fd is not None:
            os.close(fd)  # closing releases the lock


def autov2(sha256_hex: str) -> str:
    return sha256_hex[:AUTOV2_LENGTH]


def short_hash(sha256_hex: str) -> str:
    return sha256_hex[:SHORT_LENGTH]

