"""The model library: what is in models/checkpoints, vae, loras, embeddings and upscalers, and what each file is.

Only the safetensors header is read (an 8-byte little-endian length, then JSON: tensor name -> dtype,
shape, byte offsets), never the tensors, so scanning a folder of 4 GB checkpoints is instant. Key names
and shapes tell the kind (checkpoint, VAE, LoRA, embedding) and the family (SD1.x, SD1.x inpainting,
SD2.x, SDXL, other). Every broken file becomes a ModelFile with usable=False and a one-line reason;
scan() never raises. No torch here: the UI imports this module. One file's sniffing, labels and slot
check live in model_file.py (re-exported here).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from picotui.engine.errors import ModelError
from picotui.engine.models import hashing
from picotui.engine.models.demo import DEMO_FILE  # demo.py imports torch only inside its functions
from picotui.engine.models.headers import SUFFIXES
from picotui.engine.models.model_file import (
    EXTRA_FOLDERS,
    FOLDER_KIND,
    FOLDERS,
    KINDS,
    LABEL,
    ModelFile,
    check_slot,
    human_size,
    sniff,
    upscaler_label,
)

log = logging.getLogger(__name__)

MAX_DEPTH = 8  # subfolders deeper than this are not searched (and a link cycle cannot run away)


class Library:
    """The files under `root` (checkpoints/, vae/, loras/, embeddings/, with subfolders), plus the demo model.

    scan() is cheap (headers only, cached by size+mtime) so callers rescan whenever they want fresh
    results; hashes are computed on demand or in a background thread and cached in cache_dir/hashes.json.
    Thread-safe: the worker may rescan while the UI reads the list.
    """

    def __init__(self, root, cache_dir, *, allow_pickle: bool = False):
        self.root = Path(root)
        self.cache_dir = Path(cache_dir)
        self.allow_pickle = allow_pickle
        self.hashes = hashing.HashCache(self.cache_dir / "hashes.json")
        self.problems: list[str] = []  # folder-level trouble (unreadable subfolder...), one line each
        self._files: list[ModelFile] = []
        self._sniffed: dict[tuple, ModelFile] = {}  # (path, folder, size, mtime) -> ModelFile
        self._lock = threading.RLock()
        self._scanned = False
        self._hash_stop = threading.Event()
        # upscalers whose header does not name their architecture: what spandrel found when each was first
        # loaded (engine/upscaling), by path, size and mtime, so the browser shows it from then on
        self._upscaler_notes_file = self.cache_dir / "upscalers.json"
        self._upscaler_notes: dict | None = None

    # ---- listing -------------------------------------------------------------------------------
    def scan(self) -> list[ModelFile]:
        """Rescan the four folders. Returns every entry (usable or not), the demo first."""
        found, problems = [], []
        for kind in KINDS:
            for folder in (FOLDERS[kind], *EXTRA_FOLDERS.get(kind, ())):
                for path in _walk(self.root / folder, problems):
                    found.append(self._sniff_cached(path, folder))
        found.sort(key=lambda mf: (KINDS.index(mf.kind) if mf.kind in KINDS else 9, mf.name.lower(), str(mf.path)))
        with self._lock:
            self._files = [self.demo_entry(), *found]
            self.problems = problems
            self._scanned = True
            return list(self._files)

    def _sniff_cached(self, path: Path, folder: str) -> ModelFile:
        try:
            st = os.stat(path)
            key = (str(path), folder, st.st_size, st.st_mtime_ns, st.st_ino)
        except OSError:
            return sniff(path, folder, allow_pickle=self.allow_pickle)
        with self._lock:
            cached = self._sniffed.get(key)
        if cached is None:
            cached = sniff(path, folder, allow_pickle=self.allow_pickle)
            if cached.kind == "upscaler" and cached.architecture is None:
                note = self._upscaler_note(path, st)
                if note is not None:
                    architecture, scale, reason = note
                    cached = replace(cached, architecture=architecture, scale=scale)
                    if reason and cached.usable:
                        cached = replace(cached, usable=False, reason=reason)
            with self._lock:
                self._sniffed[key] = cached
        return cached

    # ---- upscalers: what loading found ----------------------------------------------------------
    def _read_upscaler_notes(self) -> dict:
        with self._lock:
            if self._upscaler_notes is None:
                try:
                    data = json.loads(self._upscaler_notes_file.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    data = {}
                self._upscaler_notes = data if isinstance(data, dict) else {}
            return self._upscaler_notes

    def _upscaler_note(self, path: Path, st: os.stat_result) -> tuple[str | None, int | None, str | None] | None:
        note = self._read_upscaler_notes().get(str(path))
        if not isinstance(note, dict) or note.get("size") != st.st_size or note.get("mtime_ns") != st.st_mtime_ns:
            return None  # never seen, or changed since
        architecture, scale, reason = note.get("architecture"), note.get("scale"), note.get("reason")
        return (architecture if isinstance(architecture, str) else None, scale if isinstance(scale, int) else None,
                reason if isinstance(reason, str) else None)

    def remember_upscaler(self, path, architecture: str | None, scale: int | None, reason: str | None = None) -> None:
        """Record what spandrel found in the upscaler file at `path` (its architecture and scale, or why it is
        no upscaler): later scans show it. Best effort: a cache that cannot be written costs only the label."""
        path = Path(path)
        try:
            st = os.stat(path)
        except OSError:
            return
        notes = self._read_upscaler_notes()
        with self._lock:
            notes[str(path)] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "architecture": architecture,
                                "scale": scale, "reason": reason}
            self._sniffed = {k: v for k, v in self._sniffed.items() if k[0] != str(path)}
            text = json.dumps(notes, indent=1, sort_keys=True)
        tmp = None
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".upscalers-", suffix=".json", dir=self.cache_dir)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, self._upscaler_notes_file)
            tmp = None
        except OSError as exc:
            log.info("could not write %s: %s", self._upscaler_notes_file, exc)
        finally:
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)

    def demo_entry(self) -> ModelFile:
        """The demo checkpoint: its real header once created, else a placeholder (created on first use)."""
        path = self.cache_dir / "demo" / DEMO_FILE
        if path.is_file():
            mf = self._sniff_cached(path, "demo")  # every scan asks: read its header once
            if mf.usable:
                return mf
        return ModelFile(path=path, name=DEMO_FILE, kind="checkpoint", family="SD1.x", size=0, usable=True,
                         reason=None, folder="demo")

    def files(self, kind: str | None = None, *, usable_only: bool = False) -> list[ModelFile]:
        """Entries of one kind (by content; unreadable files count for the folder they are in)."""
        with self._lock:
            if not self._scanned:
                self.scan()
            entries = list(self._files)
        if kind is not None:
            entries = [mf for mf in entries if mf.kind == kind
                       or (mf.kind == "unknown" and FOLDER_KIND.get(mf.folder) == kind)]
        return [mf for mf in entries if mf.usable] if usable_only else entries

    # ---- picking one -----------------------------------------------------------------------------
    def resolve(self, name_or_path: str, kind: str) -> ModelFile:
        """The file a name (file name, stem, path under the folder, or a path) means, checked for `kind`.

        Raises ModelError with one line that says what to do. Pickles pass (the loader asks for the opt-in).
        """
        query = str(name_or_path).strip()
        if not query:
            raise ModelError(f"No {LABEL[kind]} chosen: pick one with `picotui models` or in the model browser.")
        if kind == "checkpoint" and query.lower() in ("demo", DEMO_FILE.lower(), Path(DEMO_FILE).stem.lower()):
            from picotui.engine.models.demo import ensure_demo_checkpoint  # imports torch: only when the demo is used

            return self._sniff_cached(ensure_demo_checkpoint(self.cache_dir), "demo")
        mf = self._find(query, kind)
        if mf is None:
            path = Path(query).expanduser()
            if path.exists() or os.path.islink(path):
                mf = sniff(path, allow_pickle=self.allow_pickle)
            elif "/" in query or os.sep in query:
                raise ModelError(f"{query} does not exist: check the path, or run `picotui models` to list the library.")
            else:
                raise ModelError(f"No {LABEL[kind]} named {query} in {self.root / FOLDERS[kind]}: "
                                 f"run `picotui models` to list them.")
        return check_slot(mf, kind)

    def _find(self, query: str, kind: str) -> ModelFile | None:
        entries = [mf for mf in self.files() if not mf.is_demo]
        for fold in (str, str.lower):  # exact spelling first, then any case
            q = fold(query)
            hits = [mf for mf in entries if q in (fold(mf.name), fold(mf.stem), fold(self._relative(mf)),
                                                  fold(str(Path(self._relative(mf)).with_suffix(""))))]
            if hits:  # the one in the folder for this kind wins over a same-named file elsewhere
                hits.sort(key=lambda mf: (FOLDER_KIND.get(mf.folder) != kind, mf.kind != kind))
                return hits[0]
        return None

    def _relative(self, mf: ModelFile) -> str:
        try:
            return Path(mf.path).relative_to(self.root / mf.folder).as_posix()
        except ValueError:
            return mf.name

    def find_by_hash(self, short_hash: str, kind: str | None = None) -> ModelFile | None:
        """A library file whose cached hash matches: the file's SHA-256 (AutoV2 is its first 10 hex digits)
        or, for LoRAs, the addnet hash A1111 writes in "Lora hashes". Never hashes anything."""
        short_hash = short_hash.strip().lower()
        if len(short_hash) < 8:
            return None
        for mf in self.files(kind):
            if mf.size and any(full.startswith(short_hash) for full in self._known_hashes(mf)):
                return mf
        return None

    def _known_hashes(self, mf: ModelFile) -> list[str]:
        known = [self.hashes.lookup(mf.path)]
        if mf.kind == "lora":
            known += [self.hashes.lookup(mf.path, "addnet"), _sshs_hash(mf)]
        return [h for h in known if h]

    # ---- hashes ----------------------------------------------------------------------------------
    def _digest(self, model_file: ModelFile, kind: str = "sha256") -> str:
        try:
            return self.hashes.digest(model_file.path, kind)
        except OSError as exc:
            raise ModelError(f"Could not hash {model_file.name} ({exc.strerror or exc}): check that it is "
                             f"still there and readable.") from None

    def autov2(self, model_file: ModelFile) -> str:
        """First 10 hex of the file's SHA-256; computed once and cached on disk (keyed by path+size+mtime)."""
        return hashing.autov2(self._digest(model_file))

    def lora_hash(self, model_file: ModelFile) -> str:
        """What A1111 writes for this LoRA in "Lora hashes": 12 hex digits of the trainer's recorded
        `sshs_model_hash` if the header has one, else of the addnet hash (.safetensors) or the file's
        SHA-256 (other formats). Cached like autov2(); ModelError when the file cannot be read."""
        return hashing.short_hash(_sshs_hash(model_file) or self._digest(model_file, _lora_hash_kind(model_file)))

    def ti_hash(self, model_file: ModelFile) -> str:
        """What A1111 writes for an embedding in "TI hashes": 12 hex digits of the file's SHA-256."""
        return hashing.short_hash(self._digest(model_file))

    def cached_autov2(self, model_file: ModelFile) -> str | None:
        """The hash if it is already known, without reading the file (for lists that fill in later)."""
        full = self.hashes.lookup(model_file.path)
        return hashing.autov2(full) if full else None

    def start_hashing(self, callback: Callable[[ModelFile, str], None] | None = None,
                      files: list[ModelFile] | None = None) -> threading.Thread:
        """Hash `files` (default: every readable file) in a daemon thread; callback(model_file, autov2) as
        each finishes. LoRAs get their "Lora hashes" hash too, so a later lora_hash() is a cache hit.

        The callback runs in that thread. stop_hashing(), or the next start_hashing(), ends it between
        chunks: a rescan starts a new run over every file (cached ones cost nothing) instead of adding one."""
        self._hash_stop.set()
        stop = self._hash_stop = threading.Event()
        todo = [mf for mf in (self.files() if files is None else files)
                if mf is not None and mf.size > 0 and Path(mf.path).is_file()]

        def run():
            for mf in todo:
                if stop.is_set():
                    return
                try:
                    full = self.hashes.digest(mf.path, "sha256", stop.is_set)
                    if full and mf.kind == "lora" and not _sshs_hash(mf):
                        self.hashes.digest(mf.path, _lora_hash_kind(mf), stop.is_set)
                except OSError as exc:
                    log.info("could not hash %s: %s", mf.path, exc)
                    continue
                if full is None:
                    return
                if callback is None:
                    continue
                try:
                    callback(mf, hashing.autov2(full))
                except Exception:  # a failing listener must not stop the others from getting hashes
                    log.exception("hash callback failed for %s", mf.path)

        thread = threading.Thread(target=run, name="picotui-hashing", daemon=True)
        thread.start()
        return thread

    def stop_hashing(self) -> None:
        self._hash_stop.set()


def _lora_hash_kind(mf: ModelFile) -> str:
    return "addnet" if Path(mf.name).suffix.lower() == ".safetensors" else "sha256"


def _sshs_hash(mf: ModelFile) -> str | None:
    """The addnet hash kohya's trainer records in a LoRA's header (A1111 trusts it over hashing the file);
    read with the header when the file was sniffed."""
    return mf.sshs_hash if _lora_hash_kind(mf) == "addnet" else None



def _walk(top: Path, problems: list[str]):
    """Model files under `top`, following links to folders but never around a cycle."""
    seen: set[tuple[int, int]] = set()
    stack = [(top, 0)]
    while stack:
        folder, depth = stack.pop()
        try:
            st = os.stat(folder)
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except FileNotFoundError:
            continue  # the folder is optional
        except OSError as exc:
            problems.append(f"Cannot read {folder} ({exc.strerror or exc}): check its permissions.")
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue  # hidden files, partial downloads some tools write as dotfiles
            is_model_name = entry.name.lower().endswith(SUFFIXES)
            try:
                is_dir = entry.is_dir()  # follows links; False for a dangling or looping link
            except OSError:
                is_dir = False
            if is_dir and not is_model_name:
                if depth < MAX_DEPTH:
                    stack.append((Path(entry.path), depth + 1))
            elif is_model_name:
                yield Path(entry.path)


__all__ = ["ModelFile", "Library", "sniff", "check_slot", "upscaler_label", "human_size", "KINDS", "FOLDERS", "DEMO_FILE"]
