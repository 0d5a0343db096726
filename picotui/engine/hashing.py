"""AutoV2 hashes (the first 10 hex digits of a file's SHA-256, what A1111 and civitai call a model's hash),
streamed in chunks and cached on disk so a 2-4 GB checkpoint is read once, ever.

The cache is a JSON file keyed by the file's resolved path; an entry counts only while the file's size
and mtime still match, so a replaced file is hashed again. The full SHA-256 is kept (civitai looks
models up by it). Writes are atomic (temp file + os.replace) and merge with what another process wrote
meanwhile; a corrupt or unreadable cache is ignored, never fatal.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Callable

CHUNK = 4 * 1024 * 1024
AUTOV2_LENGTH = 10


def sha256_file(path: Path, should_stop: Callable[[], bool] = lambda: False) -> str | None:
    """The file's SHA-256 (hex), read in chunks (constant memory). None if `should_stop()` turned true."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            if should_stop():
                return None
            digest.update(chunk)
    return digest.hexdigest()


def _file_key(path: Path) -> tuple[str, int, int]:
    st = os.stat(path)
    return str(Path(path).resolve()), st.st_size, st.st_mtime_ns


class HashCache:
    """path -> {size, mtime_ns, sha256} on disk. Thread-safe; each file is hashed by one thread at a time."""

    def __init__(self, file: Path):
        self.file = Path(file)
        self._lock = threading.Lock()
        self._busy: dict[str, threading.Lock] = {}  # one lock per file being hashed
        self._entries = self._read()

    def _read(self) -> dict:
        try:
            data = json.loads(self.file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}  # missing or corrupt: start over (the hashes can always be recomputed)
        if not isinstance(data, dict):
            return {}
        return {k: v for k, v in data.items() if isinstance(v, dict) and isinstance(v.get("sha256"), str)}

    def lookup(self, path: Path) -> str | None:
        """The cached full SHA-256 if the file is unchanged since it was hashed; None otherwise."""
        try:
            key, size, mtime = _file_key(path)
        except OSError:
            return None
        with self._lock:
            entry = self._entries.get(key)
        if entry and entry.get("size") == size and entry.get("mtime_ns") == mtime:
            return entry["sha256"]
        return None

    def sha256(self, path: Path, should_stop: Callable[[], bool] = lambda: False) -> str | None:
        """Cached or computed SHA-256 of `path`. Raises OSError when the file cannot be read."""
        path = Path(path)
        key = str(path.resolve())
        with self._lock:
            busy = self._busy.setdefault(key, threading.Lock())
        with busy:  # a second caller for the same file waits for the first, then hits the cache
            cached = self.lookup(path)
            if cached:
                return cached
            _key, size, mtime = _file_key(path)
            digest = sha256_file(path, should_stop)
            if digest is None:
                return None
            if _file_key(path) != (_key, size, mtime):
                return digest  # changed while we read it: do not cache a hash of a moving target
            with self._lock:
                self._entries[key] = {"size": size, "mtime_ns": mtime, "sha256": digest}
            self._save()
            return digest

    def _save(self) -> None:
        """Merge with the file on disk (another process may have added entries) and replace it atomically."""
        with self._lock:
            merged = {**self._read(), **self._entries}
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
                    _unlink_quietly(tmp)
                    raise
            except OSError:
                pass  # a read-only cache dir costs a re-hash next time, nothing more


def autov2(sha256_hex: str) -> str:
    return sha256_hex[:AUTOV2_LENGTH]


def _unlink_quietly(path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
