"""The second pass's rows of the benchmark (issue 13): hires fix 512->1024 (Latent, and a 4x ESRGAN-size model
upscaler) and img2img at 768x768, each timed and its peak VRAM measured, under the small-card cap on CUDA.

All rows run in one process, one after the other (the pipeline stays loaded, as in a session); before each the
CUDA cache is emptied and the peak counters reset, so each row's peak is its own. With --tiny the sizes are
scaled down by 8 (hires 64->128, img2img 96x96) so a CPU run finishes in seconds."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

GIB = 1024**3
UPSCALER = "bench-esrgan-4x.safetensors"  # random weights, ESRGAN's real size (23 RRDB blocks, 64 filters)


def write_upscaler(path: Path, tiny: bool) -> None:
    """A 4x ESRGAN (RRDBNet) with random weights, built from spandrel's class, as people download them."""
    import torch
    from safetensors.torch import save_file

    from picotui.engine.upscaling.architectures import registry

    registry()  # spandrel's architecture modules, importable without its torchvision-importing __init__
    from spandrel.architectures.ESRGAN import ESRGAN

    torch.manual_seed(0)
    net = ESRGAN(in_nc=3, out_nc=3, num_filters=8 if tiny else 64, num_blocks=1 if tiny else 23, scale=4)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in net.state_dict().items()}, str(path))


def second_pass_rows(tiny: bool) -> list[tuple[str, dict]]:
    """(label, what the row changes from the default job); sizes scaled by 8 for the tiny model."""
    div = 8 if tiny else 1
    first, img2img = 512 // div, 768 // div
    hires = dict(hires=True, hires_scale=2.0, denoising_strength=0.7)
    return [(f"hires {first}->{first * 2}, Latent", {"size": first, "overrides": hires}),
            (f"hires {first}->{first * 2}, 4x ESRGAN", {"size": first, "overrides": {
                **hires, "hires_upscaler": Path(UPSCALER).stem}}),
            (f"img2img {img2img}x{img2img}, strength 0.75", {"size": img2img, "source": True,
                                                            "overrides": {"denoising_strength": 0.75}})]


def source_picture(path: Path, size: int) -> Path:
    """A smooth picture with detail (gradients and noise) to start img2img from."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size, 0:size] / size
    picture = np.stack([x * 220, y * 200, (1 - x) * 180], axis=-1) + rng.normal(0, 10, (size, size, 3))
    Image.fromarray(np.clip(picture, 0, 255).astype(np.uint8)).save(path)
    return path


def measure_second_pass(root: Path, a: dict, helpers) -> dict:
    """Every second-pass row in this process; `helpers` is bench.py's module (its peak and sync helpers)."""
    from picotui.engine.events import Finished, Notice, Step
    from picotui.engine.jobs.runner import JobRunner
    from picotui.engine.request import GenerationRequest
    from picotui.paths import Paths

    rows = []
    with tempfile.TemporaryDirectory(prefix="picotui-bench-2nd-") as tmp:
        work = Path(tmp)
        paths = Paths(models=root / "models", outputs=work / "outputs", config_file=work / "config.toml",
                      state=work / "state", cache=root / "picotui-cache")
        events: list = []
        runner = JobRunner(paths, a["device"], False, a.get("memory_mode"), events.append, speed=a.get("speed"),
                           preview=False)
        for job, (label, row) in enumerate(second_pass_rows(a["tiny"]), start=1):
            settings = dict(sampler=a["sampler"], steps=a["steps"], cfg=a["cfg"], rng="CPU", **row["overrides"])
            if row.get("source"):
                settings["init_image"] = str(source_picture(work / f"source-{row['size']}.png", row["size"]))
            request = GenerationRequest(prompt=helpers.PROMPT, negative_prompt=helpers.NEGATIVE,
                                        checkpoint=helpers.CHECKPOINT, width=row["size"], height=row["size"],
                                        seed=a["seed"], batch_count=1 + a["images"], **settings)
            _empty_cache(a["device"])
            helpers._reset_peaks(a["device"])
            before = len(events)
            started = time.perf_counter()
            try:
                runner.run_job(job, request, lambda: False)
            except Exception as exc:  # out of memory is a result, not a crash of the benchmark
                rows.append({"label": label, "error": helpers.error_text(exc)})
                continue
            helpers._sync(a["device"])
            wall = time.perf_counter() - started
            new = events[before:]
            finished = [e for e in new if isinstance(e, Finished)]
            steps = {}
            for e in new:
                if isinstance(e, Step) and e.image_index == 0:
                    steps[e.pass_label or "img2img"] = e.total
            times = [sum(f.timings.get(k, 0.0) for k in ("encode", "denoise", "upscale", "decode"))
                     for f in finished]
            steady = times[1:] or times
            rows.append({"label": label, "size": "x".join(map(str, finished[-1].image.size)),
                         "s_per_image": sum(steady) / len(steady), "wall_s": wall,
                         "steps": steps, "unet_evaluations": finished[-1].unet_evaluations,
                         "mode": runner.plan.label, "estimate_gib": runner.plan.estimate_bytes / GIB,
                         "upscale_s": sum(f.timings.get("upscale", 0.0) for f in finished) / len(finished),
                         "notices": sorted({e.message for e in new if isinstance(e, Notice) and "demo" not in e.message}),
                         **helpers._peaks(a["device"])})
    return {"rows": rows}


def _empty_cache(device: str) -> None:
    import gc

    import torch

    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.empty_cache()


def second_pass_report(result: dict, cap_gib: float | None) -> str:
    """The rows as a table; under a cap, whether each row's peak stayed under it."""
    if "error" in result:
        return f"second pass: {result['error']}"
    under = f" under a {cap_gib:g} GiB cap" if cap_gib else ""
    head = (f"{'second pass':<34}{'output':>11}{'s/image':>9}{'upscale s':>11}{'UNet/img':>10}{'alloc GiB':>11}"
            f"{'resv GiB':>10}{'est GiB':>9}  mode")
    lines = [f"second pass (picotui{under}; steps per pass in brackets):", head, "-" * len(head)]
    for r in result["rows"]:
        if "error" in r:
            lines.append(f"{r['label']:<34}  {r['error']}")
            continue
        resv = r.get("peak_reserved_gib")
        verdict = ""
        if cap_gib and resv is not None:
            verdict = "  (fits the cap)" if resv <= cap_gib else "  (OVER the cap)"
        steps = ", ".join(f"{k} {v}" for k, v in r["steps"].items())
        lines.append(f"{r['label']:<34}{r['size']:>11}{r['s_per_image']:>9.3f}{r['upscale_s']:>11.3f}"
                     f"{r['unet_evaluations']:>10}{_gib(r.get('peak_allocated_gib')):>11}{_gib(resv):>10}"
                     f"{r['estimate_gib']:>9.2f}  {r['mode']} [{steps}]{verdict}")
        lines += [f"    notice: {n}" for n in r["notices"]]
    return "\n".join(lines)


def _gib(value) -> str:
    return "-" if value is None else f"{value:.2f}"
