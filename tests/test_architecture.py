"""The project's shape rules, checked in fresh interpreters so nothing already imported hides a leak."""

from __future__ import annotations

import subprocess
import sys

import pytest
from cli_support import ROOT

ENGINE_MODULES = sorted(".".join(p.relative_to(ROOT / "picotui" / "engine").with_suffix("").parts)
                        for p in (ROOT / "picotui" / "engine").rglob("*.py") if p.stem != "__init__")
# What the UI imports from the engine: these must load without torch, diffusers or transformers.
LIGHT_ENGINE_MODULES = ["request", "events", "errors", "sampling.samplers", "models.library", "recipes.metadata",
                        "recipes.output", "prompting.prompts", "prompting.tokens"]


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_engine_imports_without_textual_installed():
    # A meta-path hook that refuses textual stands in for "textual not installed".
    code = f"""
import sys, importlib, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "textual" or name.startswith("textual.") or name.startswith("textual_image"):
            raise ImportError("textual is blocked in this test")
sys.meta_path.insert(0, Block())
for m in {ENGINE_MODULES!r}:
    importlib.import_module("picotui.engine." + m)
print("ok")
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


@pytest.mark.parametrize("module", LIGHT_ENGINE_MODULES)
def test_light_engine_modules_do_not_import_torch(module):
    result = run_python(f"import sys, picotui.engine.{module}; "
                        "print(sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules))")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_ui_app_imports_without_torch():
    result = run_python("import sys, picotui.ui.app, picotui.cli; "
                        "print(sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules))")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_no_source_file_breaks_the_import_rules():
    for path in (ROOT / "picotui" / "engine").rglob("*.py"):
        for line in path.read_text().splitlines():
            stripped = line.strip()
            assert not stripped.startswith(("import textual", "from textual")), f"{path} imports textual"
    for path in (ROOT / "picotui" / "ui").rglob("*.py"):
        for line in path.read_text().splitlines():
            stripped = line.strip()
            for heavy in ("torch", "diffusers", "transformers"):
                assert not stripped.startswith((f"import {heavy}", f"from {heavy}")), f"{path} imports {heavy}"
