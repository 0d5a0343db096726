"""The second pass's arithmetic as A1111 does it: how many steps an img2img run takes, and the latent upscale.

A1111 (modules/sd_samplers_common.py setup_img2img_steps) turns (steps, denoising strength) into a schedule of
`schedule_steps` steps of which the last `t_enc + 1` run, starting from the init latents noised to that step's
level:
  default (img2img, "img2img_fix_steps" off):   schedule = steps,                      t_enc = int(min(s, 0.999) * steps)
  fixed (the hires pass, or img2img_fix_steps): schedule = int(steps / min(s, 0.999)),  t_enc = steps - 1
So img2img at 20 steps and strength 0.75 runs 16 steps of a 20-step schedule, and a hires pass of 20 steps
at 0.7 runs 20 steps of a 28-step schedule. At strength 0 the fixed rule gives a schedule of 0 steps: nothing
runs and the init latents come back unchanged (A1111's samplers loop over an empty schedule); the default rule
runs one step at the schedule's smallest noise level, as A1111 does.

Hires fix's "Latent*" upscalers interpolate the latents (modules/shared_items.py latent_upscale_modes,
processing.py sample_hr_pass). Torch is imported inside functions: the UI imports the names from here.
"""

from __future__ import annotations

# A1111's latent upscaler names -> (torch.nn.functional.interpolate mode, antialias).
LATENT_UPSCALE_MODES: dict[str, tuple[str, bool]] = {
    "Latent": ("bilinear", False),
    "Latent (antialiased)": ("bilinear", True),
    "Latent (bicubic)": ("bicubic", False),
    "Latent (bicubic antialiased)": ("bicubic", True),
    "Latent (nearest)": ("nearest", False),
    "Latent (nearest-exact)": ("nearest-exact", False),
}


def img2img_steps(steps: int, strength: float, *, fixed: bool) -> tuple[int, int]:
    """A1111's (schedule steps, t_enc) for `steps` at denoising `strength`; `fixed` is the hires pass's rule
    (and A1111's img2img_fix_steps setting). t_enc + 1 steps run, the last ones of the schedule; when the
    schedule has 0 steps (fixed, strength 0) none run."""
    steps, strength = int(steps), float(strength)
    if fixed:
        schedule = int(steps / min(strength, 0.999)) if strength > 0 else 0
        return schedule, steps - 1
    return steps, int(min(strength, 0.999) * steps)


def img2img_steps_run(steps: int, strength: float, *, fixed: bool) -> int:
    """How many sampler steps an img2img run takes (the progress total): t_enc + 1, or 0 for an empty schedule."""
    schedule, t_enc = img2img_steps(steps, strength, fixed=fixed)
    return min(t_enc + 1, schedule) if schedule > 0 else 0


def latent_upscale(latents, width: int, height: int, upscaler: str):
    """`latents` interpolated to the latent size of a width x height image (height // 8, width // 8) with
    A1111's mode for the "Latent*" upscaler `upscaler`; float32, as the k-diffusion loop takes them."""
    import torch

    from picotui.engine.errors import RequestError

    mode = LATENT_UPSCALE_MODES.get(upscaler)
    if mode is None:
        raise RequestError(f"{upscaler!r} is not a latent upscaler: choose one of "
                           f"{', '.join(LATENT_UPSCALE_MODES)}.")
    interpolation, antialias = mode
    # float32: A1111's samples are float32 here, and antialiased/bicubic modes lack fp16 kernels on some devices
    return torch.nn.functional.interpolate(latents.float(), size=(int(height) // 8, int(width) // 8),
                                           mode=interpolation, antialias=antialias)
