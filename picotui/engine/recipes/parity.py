"""Will picotui reproduce this recipe's picture? "exactly", "closely" or "not", with the reasons.

  exactly  the same maths and the same noise as A1111: the same picture, down to floating-point rounding
           (held to k-diffusion's own samplers in tests/test_sampling_a1111_parity.py: <= 1/255 on average)
  closely  the same composition, small visible differences (a sampler variant, emphasis rounding)
  not      a different picture: a setting picotui does not apply, a sampler or schedule it lacks

The second pass: hires fix with a Latent upscaler (or Lanczos, Nearest, None) is A1111's procedure; with an
upscaler model it is as close as the model file allows; img2img reproduces only from the same source file.

No torch here: `picotui info --check-parity` runs without loading the engine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from picotui.engine.recipes.metadata import Recipe, parse_parameters
from picotui.engine.sampling.samplers import SAMPLERS

LEVELS = ("exactly", "closely", "not")
# Samplers whose maths is A1111's but which tests hold to a reference only in part.
_CLOSE_SAMPLERS = {
    "DDIM": "DDIM runs diffusers' scheduler with A1111's timesteps (the same maths, not compared with A1111 "
            "pixel for pixel)",
    "PLMS": "PLMS runs diffusers' scheduler with A1111's timesteps (the same maths, not compared with A1111 "
            "pixel for pixel)",
    "UniPC": "UniPC runs diffusers' UniPC (variant bh2, order 2); A1111 runs its own (bh1, order 3): close, "
             "not equal",
    "LCM": "LCM follows A1111's LCM sampler; it is held to a reference only at step counts that land on LCM's "
           "own timesteps (2, 8, 50)",
}
_WEIGHTED = re.compile(r"(?<!\\)[(\[]")  # A1111 emphasis: (word), (word:1.3), [word]; \( is a literal


@dataclass
class ParityReport:
    level: str = "exactly"
    reasons: list[str] = field(default_factory=list)

    def downgrade(self, level: str, reason: str) -> None:
        if LEVELS.index(level) > LEVELS.index(self.level):
            self.level = level
        self.reasons.append(f"{level}: {reason}")

    def lines(self) -> list[str]:
        head = {"exactly": "picotui reproduces this picture exactly (same maths, same noise)",
                "closely": "picotui reproduces this picture closely (small differences)",
                "not": "picotui does not reproduce this picture (it will differ)"}[self.level]
        return [f"Parity: {self.level} - {head}"] + [f"  - {reason}" for reason in self.reasons]


def parity_report(recipe: Recipe) -> ParityReport:
    report = ParityReport()
    request = recipe.request
    params = parse_parameters(recipe.parameters) if recipe.parameters.strip() else {}
    for note in recipe.unmatched:
        report.downgrade("not", note)
    spec = SAMPLERS[request.sampler]
    if spec.name in _CLOSE_SAMPLERS:
        report.downgrade("closely", _CLOSE_SAMPLERS[spec.name])
    elif spec.name == "Restart" and request.steps >= 20:
        report.downgrade("closely", "Restart from 20 steps adds A1111's restart segments; picotui follows A1111's "
                                    "code, but only Restart below 20 steps is held to a reference")
    if recipe.source == "a1111" and _WEIGHTED.search(request.prompt + "\n" + request.negative_prompt):
        emphasis = params.get("Emphasis", "Original").strip()
        if emphasis == "Original":
            report.downgrade("closely", "weighted prompt: A1111's 'Original' emphasis is reproduced, but its "
                                        "mean-restoring rescale amplifies float rounding")
    if not report.reasons:
        report.reasons.append(f"exactly: {request.sampler} with the {request.schedule_type} schedule is A1111's "
                              f"k-diffusion maths; the noise follows the recipe's seed and source")
    _second_pass(request, report)
    return report


def _second_pass(request, report: ParityReport) -> None:
    """What parity means for img2img and hires fix. Latent upscalers and PIL's resizes follow A1111's procedure
    exactly; a model upscaler's picture is that model file's (the same file, tiles and upscale loop give
    A1111's, within the model's float rounding); img2img is the same picture only from the same source file."""
    from pathlib import Path

    from picotui.engine.upscaling.upscalers import builtin_name, is_latent

    if request.hires:
        name = request.hires_upscaler
        if request.hires_sampler in _CLOSE_SAMPLERS:
            report.downgrade("closely", f"hires pass: {_CLOSE_SAMPLERS[request.hires_sampler]}")
        if is_latent(name):
            report.reasons.append(f"exactly: hires fix with {name} is A1111's procedure (the latents interpolated, "
                                  f"new noise at the hires size, its step rule for the second pass)")
        elif builtin_name(name):
            report.reasons.append(f"exactly: hires fix with {name}: the first pass decoded, resized as A1111 does, "
                                  f"encoded again")
        else:
            report.downgrade("closely", f"hires upscaler {name} is a model: the picture depends on that model file "
                                        f"(the same file gives A1111's upscale within float rounding)")
    if request.init_image:
        known = f" (file hash {request.init_image_hash})" if request.init_image_hash else ""
        report.reasons.append(f"exactly: image to image from {Path(request.init_image).name}: the same picture only "
                              f"from the same source file{known}")
