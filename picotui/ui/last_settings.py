"""The form's last used settings, saved as JSON beside the config file and restored on start.

A file that cannot be read or does not hold valid settings is ignored with a one-line notice: the
app always starts. Writes are atomic (temp file + rename) so a crash never leaves half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from picotui.engine.errors import RequestError, one_line
from picotui.engine.request import GenerationRequest

VERSION = 1


@dataclass(frozen=True)
class Saved:
    request: GenerationRequest
    seed_locked: bool = False


def load_settings(path: Path) -> tuple[Saved | None, str | None]:
    """(settings or None, problem line or None). A missing file is not a problem."""
    try:
        if not path.is_file():
            return None, None
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or "request" not in data:
            raise RequestError("it is not a picotui settings file")
        request = GenerationRequest.from_dict(data["request"])
        return Saved(request, bool(data.get("seed_locked", False))), None
    except (OSError, ValueError, RequestError, TypeError, RecursionError) as exc:
        # ValueError covers JSONDecodeError and UnicodeDecodeError; RecursionError is what json raises
        # on a file nested thousands of levels deep: every one means "not usable settings".
        reason = one_line(exc, 120)
        return None, f"Ignored the saved settings in {path} ({reason}); starting with defaults."


def save_settings(path: Path, saved: Saved) -> str | None:
    """Write atomically; returns a problem line instead of raising (saving settings must not break the app)."""
    data = {"version": VERSION, "seed_locked": saved.seed_locked, "request": saved.request.to_dict()}
    tmp = None
    try:
        # ensure_ascii: names from non-UTF-8 file systems carry lone surrogates ("caf\udce9") that no
        # UTF-8 writer accepts; as \u escapes they round-trip through json.loads unchanged.
        text = json.dumps(data, ensure_ascii=True, indent=1)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".settings-", suffix=".json", dir=path.parent)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(text)
        os.replace(tmp, path)
        return None
    except (OSError, ValueError) as exc:
        if tmp is not None:  # never leave a .settings-*.json behind
            try:
                os.unlink(tmp)
            except OSError:
                pass
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return f"Could not save settings to {path}: {' '.join(reason.split())[:120]}."
