"""The project's shape rules, checked in fresh interpreters so nothing already imported hides a leak."""

from __future__ import annotations

import subprocess
import sys

import pytest
from cli_support import ROOT

ENGINE_MODULES = sorted(".".join(p.relative_to(ROOT / "picotui" / "engine").with_suffix("").parts)
                        for p in (ROOT / "picotui" / "engine").rglob("*.py") if p.stem != "__init__")
# What the UI imports from the engine: these must load without torch, diffusers or transformers.
LIGHT_ENGINE_MODULES = ["request", "events", "errors", "sampling.samplers", "sampling.schedules", "models.library",
                        "recipes.metadata", "recipes.parity",
                        "recipes.output", "prompting.prompts", "prompting.tokens"]
LIGHT_ENGINE_MODULES += ["plots.axes", "plots.plan", "plots.run"]  # the plot screen's
LIGHT_ENGINE_MODULES += ["upscaling.upscalers"]  # the upscaler names the form offers


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


# The engine's layers, lowest first (the same list as picotui/engine/__init__.py's docstring). A module may
# import engine modules of its own layer or a lower one, never a higher one.
ENGINE_LAYERS = [
    {"errors"},
    {"hardware"},
    {"sampling"},
    {"request", "events"},
    {"models"},
    {"upscaling"},
    {"prompting"},
    {"recipes"},
    {"jobs"},
    {"plots"},
]
# Outside the engine, the engine may use only these (pure helpers with no UI in them).
ENGINE_MAY_IMPORT = {"picotui", "picotui.__version__", "picotui.paths"}


def imported_modules(path):
    """Every module an `import` or `from ... import` in the file names, at any depth (lazy imports count)."""
    import ast

    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module
            # `from picotui.engine import x` names module x
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def engine_layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[:2] != ["picotui", "engine"] or len(parts) < 3:
        return None
    for index, layer in enumerate(ENGINE_LAYERS):
        if parts[2] in layer:
            return index
    raise AssertionError(f"{module} is in no engine layer: add its package to ENGINE_LAYERS and the engine docstring")


def outside_engine_allowed(name: str) -> bool:
    return name in ENGINE_MAY_IMPORT or any(name.startswith(m + ".") for m in ENGINE_MAY_IMPORT - {"picotui"})


def import_rule_breaks(root) -> list[str]:
    breaks: set[str] = set()
    engine = root / "picotui" / "engine"
    for path in sorted(engine.rglob("*.py")):
        rel = path.relative_to(root / "picotui").with_suffix("")
        own = engine_layer(".".join(("picotui", *rel.parts))) if rel.parts[1:] != ("__init__",) else 0
        for name in imported_modules(path):
            if name.startswith("picotui.") or name == "picotui":
                layer = engine_layer(name)
                if layer is None:
                    if name.split(".")[:2] != ["picotui", "engine"] and not outside_engine_allowed(name):
                        breaks.add(f"{rel}: imports {name} (the engine imports nothing of the app but paths)")
                elif own is not None and layer > own:
                    breaks.add(f"{rel}: imports picotui.engine.{name.split('.')[2]}, a higher layer")
    for path in sorted((root / "picotui" / "ui").rglob("*.py")):
        for name in imported_modules(path):
            if name.split(".")[0] in {"torch", "diffusers", "transformers", "accelerate", "peft"}:
                breaks.add(f"{path.relative_to(root)}: the UI imports {name}")
            if name == "picotui.cli" or name.startswith("picotui.cli."):
                breaks.add(f"{path.relative_to(root)}: the UI imports picotui.cli (cli sits above the UI)")
    return sorted(breaks)


def test_engine_layers_import_only_downhill():
    assert import_rule_breaks(ROOT) == []


def test_the_layer_check_catches_a_forbidden_import(tmp_path):
    # A copy of the tree with one upward import added must fail the check.
    import shutil

    shutil.copytree(ROOT / "picotui", tmp_path / "picotui", ignore=shutil.ignore_patterns("__pycache__"))
    samplers = tmp_path / "picotui" / "engine" / "sampling" / "samplers.py"
    samplers.write_text(samplers.read_text() + "\nfrom picotui.engine.recipes.metadata import read_recipe\n")
    added = set(import_rule_breaks(tmp_path)) - set(import_rule_breaks(ROOT))
    assert added == {"engine/sampling/samplers: imports picotui.engine.recipes, a higher layer"}


def test_every_key_binding_has_an_id():
    # The id is the name a [keymap] entry in config.toml uses: a binding without one cannot be moved.
    import ast

    missing = []
    for path in sorted((ROOT / "picotui").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "Binding":
                if not any(keyword.arg == "id" for keyword in node.keywords):
                    missing.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert missing == []
