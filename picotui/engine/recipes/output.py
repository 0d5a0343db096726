"""Saving images: outputs/YYYY-MM-DD/NNNNN-SEED.png, atomically, with the recipe inside.

How a save works, and why:
1. The PNG (with A1111's `parameters` chunk and our `picotui` JSON chunk) is encoded in memory first,
   so an encoder error never leaves a file behind.
2. It is written to a hidden temp file in the same folder and fsync'ed: the bytes are on disk before
   the file gets its real name.
3. The number is reserved with an O_EXCL marker file (`.NNNNN.reserved`) plus a check that no PNG
   has it yet; then the real name is claimed with os.link(temp, final), which fails if the name
   exists and publishes the complete file in one step; then the marker goes. Two threads or two
   processes (or a restart) never get the same number, whatever their seeds; the loser tries the
   next one. Filesystems without hard links fall back to an O_EXCL placeholder that os.replace fills.
4. Any OSError (read-only folder, disk full) removes the temp file and raises SaveError (one line);
   the caller keeps the image in memory so the user can save again (`save_again`).
5. A cancel (`is_cancelled`) is honoured until the final name is claimed: before that, the temp file
   goes and JobCancelled is raised; after it, the save completes (a finished PNG is never deleted).

The only names a save ever creates besides the PNG: `.picotui-*.part` (temp) and `.NNNNN.reserved`
(marker), both removed on success and on failure (`TEMP_GLOBS`, for tests and tidy-ups).
"""

from __future__ import annotations

import datetime as _dt
import errno
import io
import os
import re
import tempfile
from pathlib import Path

from picotui.engine.errors import JobCancelled, SaveError, one_line
from picotui.engine.recipes.infotext import PARAMETERS_CHUNK, PICOTUI_CHUNK, picotui_chunk

_NUMBERED = re.compile(r"^(\d{5,})-.*\.png$", re.IGNORECASE)
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MAX_TRIES = 10_000
TEMP_PREFIX, TEMP_SUFFIX = ".picotui-", ".part"
TEMP_GLOBS = (f"{TEMP_PREFIX}*{TEMP_SUFFIX}", ".*.reserved")  # what an interrupted save could leave behind


def _file_mode() -> int:
    """0666 less the process umask, as open() would give. os.umask can only be read by setting it: it is
    set to the usual 022 for that instant, so a file another thread creates meanwhile is still ordinary."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


FILE_MODE = _file_mode()


def _text(value: str) -> str:
    """Text a PNG chunk can hold: a file name that is not valid UTF-8 (Linux gives it to Python with
    surrogate escapes) is written with its raw bytes as \\xNN escapes instead of failing the save."""
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def encode_png(image, request, parameters: str) -> bytes:
    from PIL import Image, PngImagePlugin

    if not isinstance(image, Image.Image):
        image = Image.fromarray(image)
    info = PngImagePlugin.PngInfo()
    info.add_text(PARAMETERS_CHUNK, _text(parameters))  # tEXt when Latin-1 fits, else iTXt: as A1111 does
    info.add_itxt(PICOTUI_CHUNK, _text(picotui_chunk(request)))
    buf = io.BytesIO()
    image.save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def save_png(image, outputs_dir, request, parameters: str, *, today: _dt.date | None = None,
             is_cancelled=None) -> Path:
    """Write the image to outputs_dir/YYYY-MM-DD/NNNNN-SEED.png and return the path. Raises SaveError.

    `is_cancelled` (a no-argument callable) is checked before anything is written and again just before
    the final name is claimed; if it says yes, nothing is left behind and JobCancelled is raised.
    """
    def check_cancel():
        if is_cancelled is not None and is_cancelled():
            raise JobCancelled()

    check_cancel()
    day = Path(outputs_dir) / (today or _dt.date.today()).isoformat()
    try:
        data = encode_png(image, request, parameters)
    except (OSError, ValueError, TypeError) as exc:
        raise SaveError(f"Could not encode the image as PNG ({one_line(exc, 120)}): "
                        f"please report it, with the log.") from None
    seed = request.seed if request.seed is not None else "x"
    tmp = None
    try:
        day.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX, dir=day)
        os.fchmod(fd, FILE_MODE)  # mkstemp makes 0600; an image is a normal file (0644 with umask 022)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        check_cancel()  # the last moment a cancel stops the save: from here on the PNG gets its name
        number = next_number(day)
        for _ in range(MAX_TRIES):
            marker = _reserve(day, number)
            if marker is not None:
                final = day / f"{number:05d}-{seed}.png"
                try:
                    if _claim(tmp, final):
                        _fsync_dir(day)
                        return final
                finally:
                    _unlink(marker)  # the PNG itself now holds the number
            number += 1
        raise SaveError(f"Could not find a free file name in {day}: tidy up that folder.")
    except OSError as exc:
        raise SaveError(_message(exc, day)) from None
    finally:
        if tmp is not None:
            _unlink(tmp)  # after a link the temp name is just a second name; after a failure it is junk


def save_again(finished, outputs_dir, *, today: _dt.date | None = None) -> Path:
    """Save the image of a Finished event whose save failed (`path` None, `save_error` set) once the
    cause is fixed (space freed, folder made writable, or another `outputs_dir`). Same file naming,
    metadata and atomicity as the first try; returns the new path, raises SaveError (one line) again if
    it still fails. Plain file I/O, no torch: safe to call from the UI thread for a typical image.
    """
    parameters = finished.parameters
    if not parameters:  # the first try failed before the A1111 text was made: write it without hashes
        from picotui.engine.recipes.infotext import a1111_parameters

        request = finished.request
        parameters = a1111_parameters(request, model_name=Path(request.checkpoint).stem, model_hash=None,
                                      vae_name=request.vae, vae_hash=None)
    return save_png(finished.image, outputs_dir, finished.request, parameters, today=today)


def partial_files(folder) -> list[Path]:
    """Temp and marker files an interrupted save could leave under `folder` (empty after every save)."""
    root = Path(folder)
    return sorted(p for pattern in TEMP_GLOBS for p in root.rglob(pattern))


def _reserve(day: Path, number: int) -> Path | None:
    """Own `number` in `day` (another saver may use another seed, so the file name alone is not enough):
    an O_EXCL marker, then a check that no PNG has that number yet. None if it is taken."""
    marker = day / f".{number:05d}.reserved"
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    except FileExistsError:
        return None
    prefix = f"{number:05d}-"
    if any(e.name.startswith(prefix) and e.name.lower().endswith(".png") for e in os.scandir(day)):
        _unlink(marker)  # it was taken, and its marker removed, before we looked
        return None
    return marker


def _claim(tmp: str, final: Path) -> bool:
    """Give the temp file the name `final` if nobody has it; False if taken."""
    try:
        os.link(tmp, final)
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.EXDEV, errno.ENOSYS):
            raise
    try:  # no hard links here (FAT, some network shares): reserve the name, then move the data over it
        os.close(os.open(final, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    except FileExistsError:
        return False
    try:
        os.replace(tmp, final)
    except OSError:
        _unlink(final)
        raise
    return True


def next_number(folder: Path) -> int:
    """One more than the highest NNNNN- prefix in `folder` (1 in an empty one)."""
    highest = 0
    try:
        for entry in os.scandir(folder):
            m = _NUMBERED.match(entry.name)
            if m:
                highest = max(highest, int(m[1]))
    except OSError:
        pass
    return highest + 1


def list_outputs(outputs_dir) -> list[Path]:
    """Saved PNGs under outputs_dir (dated folders), newest first: by day, then by number."""
    root = Path(outputs_dir)
    found = []
    try:
        days = [e for e in os.scandir(root) if _DAY.match(e.name) and e.is_dir()]
    except OSError:
        return []
    for day in days:
        try:
            entries = list(os.scandir(day.path))
        except OSError:
            continue
        for entry in entries:
            if entry.name.startswith(".") or not entry.name.lower().endswith(".png"):
                continue
            m = _NUMBERED.match(entry.name)
            found.append(((day.name, int(m[1]) if m else -1, entry.name), Path(entry.path)))
    found.sort(key=lambda item: item[0], reverse=True)
    return [path for _key, path in found]


def _message(exc: OSError, folder: Path) -> str:
    if exc.errno == errno.ENOSPC or exc.errno == errno.EDQUOT:
        return f"The disk is full: could not save to {folder}. Free some space, then save again."
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return (f"Cannot write to {folder} (read-only or no permission): pick another outputs folder "
                f"(--outputs or PICOTUI_OUTPUTS), then save again.")
    return f"Could not save to {folder} ({exc.strerror or exc}): check the outputs folder, then save again."


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # not every filesystem lets a directory be synced; the file itself already is
    finally:
        os.close(fd)


def _unlink(path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
