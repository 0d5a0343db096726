"""Few-step LoRAs (LCM-LoRA, TCD, Hyper-SD, PCM): distillations that draw in 1-8 steps at CFG 1-2, if the job's
settings fit them. Which LoRA is one, and what settings it needs.

A LoRA is recognised from the text its safetensors header carries (kohya's ss_output_name and training
comment, the modelspec title/description/tags), else from its file name; the user can mark any LoRA as
few-step, or unmark a recognised one, in the model browser (kept in the state folder). The settings come
from the distillations' own model cards: LCM-LoRA 4-8 steps at CFG 1-2 with the LCM sampler; TCD 4-8 steps
at CFG 1 with TCD; Hyper-SD and PCM the step count in their name ("Hyper-SD15-8steps"), CFG 1 (5-8 for their
"-CFG"/"normalcfg" variants) with TCD.

No torch here: the UI imports this module.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from picotui.engine.sampling.samplers import SAMPLER_NAMES

log = logging.getLogger(__name__)

MARKS_FILE = "few-step-loras.json"
# header metadata that describes the LoRA in words (kohya's trainer, the modelspec convention)
_DESCRIBING = ("ss_output_name", "ss_training_comment", "modelspec.title", "modelspec.description",
               "modelspec.tags", "name", "description")


@dataclass(frozen=True)
class FewStep:
    kind: str  # "LCM-LoRA", "TCD", "Hyper-SD", "PCM", "few-step" (marked by the user)
    steps: tuple[int, int]  # the range that works
    cfg: tuple[float, float]
    sampler: str  # the sampler to use, one of SAMPLER_NAMES
    source: str  # "metadata" | "name" | "marked"
    suggested_steps: int = 0  # what one key applies (0: the low end of the range)

    @property
    def best_steps(self) -> int:
        return self.suggested_steps or self.steps[0]

    def settings_text(self) -> str:
        steps = f"{self.steps[0]}" if self.steps[0] == self.steps[1] else f"{self.steps[0]}–{self.steps[1]}"
        cfg = f"{self.cfg[0]:g}" if self.cfg[0] == self.cfg[1] else f"{self.cfg[0]:g}–{self.cfg[1]:g}"
        return f"{steps} steps, CFG {cfg}, {self.sampler}"

    def fits(self, steps: int, cfg: float, sampler: str) -> bool:
        return (self.steps[0] <= steps <= self.steps[1] and self.cfg[0] <= cfg <= self.cfg[1]
                and sampler == self.sampler)


def _sampler(*preferred: str) -> str:
    """The first of `preferred` the sampler table has (LCM arrives with the k-diffusion loop)."""
    return next((name for name in preferred if name in SAMPLER_NAMES), preferred[-1])


def _count(text: str, default: int) -> int:
    m = re.search(r"(\d+)[-_ ]?steps?", text)
    return max(1, min(int(m[1]), 12)) if m else default


def profile_from_text(text: str, source: str) -> FewStep | None:
    """The few-step profile a LoRA's name or description names, or None."""
    t = text.lower()
    tcd = _sampler("TCD", "Euler a")
    if re.search(r"hyper[-_ ]?sd", t):
        steps = _count(t, 8)
        if "cfg" in t:  # Hyper-SD15-8steps-CFG: keeps real guidance
            return FewStep("Hyper-SD", (steps, steps), (5.0, 8.0), tcd, source, steps)
        return FewStep("Hyper-SD", (steps, steps), (1.0, 1.0), tcd, source, steps)
    if re.search(r"(^|[^a-z])pcm([^a-z]|$)", t):
        steps = _count(t, 4)
        cfg = (5.0, 8.0) if "normalcfg" in t else (1.0, 2.0)
        return FewStep("PCM", (steps, steps), cfg, tcd, source, steps)
    if re.search(r"(^|[^a-z])tcd([^a-z]|$)", t):
        return FewStep("TCD", (4, 8), (1.0, 1.0), tcd, source, 4)
    if re.search(r"(^|[^a-z])lcm([^a-z]|$)|latent[-_ ]?consistency", t):
        return FewStep("LCM-LoRA", (4, 8), (1.0, 2.0), _sampler("LCM", "TCD", "Euler a"), source, 6)
    return None


def describing_text(path) -> str:
    """The header metadata that describes a .safetensors LoRA in words ("" for none or an unreadable file)."""
    from picotui.engine.models.headers import read_header

    path = Path(path)
    if path.suffix.lower() not in (".safetensors", ".sft"):
        return ""
    metadata: dict[str, str] = {}
    try:
        read_header(path, path.stat().st_size, metadata)
    except (OSError, ValueError):
        return ""
    return " ".join(str(metadata[k]) for k in _DESCRIBING if metadata.get(k))


def recognise(path) -> FewStep | None:
    """What a LoRA file is, by its header's description first, else its file name."""
    text = describing_text(path)
    found = profile_from_text(text, "metadata") if text else None
    return found or profile_from_text(Path(path).stem, "name")


MARKED = FewStep("few-step", (4, 8), (1.0, 2.0), _sampler("LCM", "TCD", "Euler a"), "marked", 6)


class FewStepMarks:
    """The user's marks (file name -> True: few-step, False: not, whatever its name says), in the state folder."""

    def __init__(self, state_dir):
        self.path = Path(state_dir) / MARKS_FILE
        self.problem: str | None = None  # one line when the file could not be read or written
        self.marks: dict[str, bool] = {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            self.marks = {str(k): bool(v) for k, v in data.items()} if isinstance(data, dict) else {}
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as exc:
            self.problem = f"Few-step LoRA marks in {self.path} could not be read ({exc.__class__.__name__}): " \
                           f"mark them again in the model browser (f)."

    def profile(self, name: str, path=None) -> FewStep | None:
        """The profile for LoRA file `name` (at `path`, when known): marks first, then recognition."""
        mark = self.marks.get(Path(name).name)
        if mark is False:
            return None
        found = recognise(path if path is not None else name)
        if mark and found is None:
            return MARKED
        return found

    def toggle(self, name: str, path=None) -> FewStep | None:
        """Flip whether `name` counts as few-step; saves; returns its profile now."""
        name = Path(name).name
        self.marks[name] = self.profile(name, path) is None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.marks, indent=1, sort_keys=True), encoding="utf-8")
            tmp.replace(self.path)
            self.problem = None
        except OSError as exc:
            self.problem = f"Could not save the few-step marks to {self.path}: {exc.strerror or exc}."
            log.warning("%s", self.problem)
        return self.profile(name, path)


def job_profile(loras, marks: FewStepMarks, library=None) -> tuple[str, FewStep] | None:
    """(LoRA name, its profile) for the first few-step LoRA among `loras` (LoraSpec-like, `.name`), or None."""
    for spec in loras:
        path = None
        if library is not None:
            try:
                path = library.resolve(spec.name, "lora").path
            except Exception:  # an unknown LoRA: its name alone still tells
                path = None
        found = marks.profile(spec.name, path)
        if found is not None:
            return spec.name, found
    return None


_PREFERENCE = ("LCM-LoRA", "TCD", "Hyper-SD", "PCM", "few-step")


def faster_setting(request, timings: dict, evaluations: int, available: dict[str, FewStep]) -> str | None:
    """What a few-step LoRA would cost for this image, from this image's own cost per UNet evaluation:
    "6 steps with LCM-LoRA: about 9 s" (None when none is available, the job already runs one in its
    settings, or it would not be faster). `available`: LoRA file name -> profile."""
    denoise = float(timings.get("denoise") or 0.0)
    if not available or evaluations <= 0 or denoise <= 0:
        return None
    in_job = [available[n] for n in available if any(Path(s.name).name == n or Path(s.name).stem == Path(n).stem
                                                      for s in request.loras)]
    if any(p.fits(request.steps, request.cfg, request.sampler) for p in in_job):
        return None
    choices = in_job or sorted(available.values(), key=lambda p: _PREFERENCE.index(p.kind))
    best = choices[0]
    evaluations_then = best.best_steps * (1 if best.cfg[0] <= 1 else 2)
    overhead = float(timings.get("decode") or 0.0)
    seconds = denoise / evaluations * evaluations_then + overhead
    if seconds >= 0.8 * (denoise + overhead):
        return None
    said = f"{seconds:.1f}" if seconds < 10 else f"{seconds:.0f}"
    return f"{best.best_steps} steps with {best.kind}: about {said} s"
