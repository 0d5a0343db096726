"""The benchmark script runs end to end (on CPU, tiny model), so it is ready for a GPU run and cannot rot.

Speed itself is never asserted here: the numbers come from device runs (benchmarks/results/).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_benchmark_compares_both_engines_and_saves_a_report(tmp_path):
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--tiny", "--device", "cpu", "--sizes", "64",
         "--steps", "2", "--images", "1",
         # DDIM: diffusers runs it in both engines; picotui's k-diffusion samplers are not diffusers' maths
         "--sampler", "DDIM", "--cache", str(tmp_path / "cache"), "--save",
         "--results", str(tmp_path / "results")],
        capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^64x64\s+(diffusers|picotui)\s.*$", out, re.M)}
    assert set(rows) == {"diffusers", "picotui"}, out
    assert "error" not in out.lower() and "crashed" not in out
    # same weights, sampler, seed: the two engines must make the same picture
    assert re.search(r"64x64: s/image [\d.]+x, first image [\d.]+x, load [\d.]+x, image max pixel diff [01]/255", out), out
    # iterating never reloads the checkpoint
    assert re.search(r"LoRA: first load [\d.]+ s, weight change [\d.]+ s; VAE switch [\d.]+ s", out)
    assert "checkpoint reloads: 0" in out
    # the fast path's rows, measured in the same run: every row ran, and the UNet evaluations are the documented ones
    fast = {m.group(1).strip(): m.group(0) for m in re.finditer(r"^(default|CFG 1|NGMS 2|LCM-LoRA \d steps[^ ]*|"
                                                               r"token merging 0\.[35]|preview off|colour preview"
                                                               r"|TAESD preview)\b.*$", out, re.M)}
    assert len(fast) == 11, out
    # columns after the label: steps, s/image, s/step, UNet evaluations per image, then the two ratios
    unet = {label: int(re.search(r"\s\d+\s+[\d.]+\s+[\d.]+\s+(\d+)\s+[\d.]+x", row)[1]) for label, row in fast.items()}
    assert unet["default"] == 4 and unet["CFG 1"] == 2  # 2 steps at CFG 7: 2 evaluations a step; at CFG 1: 1
    assert [unet[k] for k in sorted(unet) if k.startswith("LCM-LoRA")] == [4, 6, 8]
    # the second pass's rows (issue 13) at the tiny model's scaled sizes: every row ran, with A1111's step counts
    rows = re.findall(r"^(hires 64->128, (?:Latent|4x ESRGAN)|img2img 96x96, strength 0.75)\s+(\d+x\d+)\s.*\[(.*)\]",
                      out, re.M)
    assert [(label.split(",")[0], size, steps) for label, size, steps in rows] == [
        ("hires 64->128", "128x128", "first pass 2, hires pass 2"),
        ("hires 64->128", "128x128", "first pass 2, hires pass 2"),
        ("img2img 96x96", "96x96", "img2img 2")]  # int(0.75 * 2) + 1
    saved = list((tmp_path / "results").glob("*-tiny.txt"))
    assert len(saved) == 1 and saved[0].read_text().strip() == out.strip()
