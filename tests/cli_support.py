"""This checkout's root, and `python -m picotui` run in a child process as an isolated user."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def picotui_env(base: Path, inherit: bool = False, **extra) -> dict:
    """A child's environment: PATH, HOME under `base` and this checkout importable, plus `extra`. With
    `inherit`, on top of this process's environment less every PICOTUI_* and XDG_* variable (so torch's
    thread setting and the hub's offline flags carry over, and nothing of the developer's picotui set-up)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PICOTUI_", "XDG_"))} if inherit else {}
    env.update(PATH=os.environ.get("PATH", "/usr/bin:/bin"), HOME=str(base / "home"),
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    return {**env, **extra}


def run_picotui(env: dict, *argv, cwd=None, timeout=300) -> subprocess.CompletedProcess:
    """`python -m picotui ARGV` in `cwd` (the checkout unless given), its output captured as text."""
    return subprocess.run([sys.executable, "-m", "picotui", *argv], capture_output=True, text=True, env=env,
                          cwd=cwd or ROOT, timeout=timeout)
