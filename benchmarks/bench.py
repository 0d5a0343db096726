"""picotui's engine against plain diffusers, in one run, on one GPU: load time, s/image, it/s, peak VRAM.

    python benchmarks/bench.py                       # 512², 768², 1024², then again under a 4 GiB cap
    python benchmarks/bench.py --sizes 512 --no-cap  # the GPU smoke run: one size, both engines
    python benchmarks/bench.py --save                # also write benchmarks/results/<date>-<gpu>.txt
    python benchmarks/bench.py --tiny --device cpu --sizes 64 --steps 2 --images 1 --no-cap   # CPU smoke
    python benchmarks/bench.py --only-second-pass    # hires 512->1024 and img2img 768² under the 4 GiB cap

The model is a full-size SD1.5-architecture checkpoint with random weights, written once in the LDM
single-file layout civitai ships (fp16, ~2 GB) and cached in benchmarks/cache/, with a kohya LoRA and a
VAE beside it. Random weights give noise images, but every kernel runs at its real size.

"Plain diffusers" is `StableDiffusionPipeline.from_single_file` on the same file (offline, with the
bundled configs), fp16 on the GPU, PyTorch SDPA attention, the same sampler, steps, CFG, size and CPU
seed: what a diffusers user would write. Both engines make the same picture; the report says how close.

Each measurement runs in a fresh process, so peak-memory counters start clean and the 4 GiB cap
(`torch.cuda.set_per_process_memory_fraction`, standing in for a 4 GB card) applies to that run alone.
s/image counts from prompt to decoded image (PNG writing is reported apart); it/s = steps / s/image.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from fast_path import fast_report, fast_rows  # beside this script (its folder is on sys.path)
from model_files import CHECKPOINT, LORA, TAESD, VAE, prepare
from report import report
from second_pass import measure_second_pass, second_pass_report

HERE = Path(__file__).resolve().parent
GIB = 1024**3
PROMPT = ("welsh pembroke corgi, sitting on wooden floor, small laptop, warm lighting, soft shadows, cute, "
          "stylized")
NEGATIVE = ("bad anatomy, low quality, blurry, watermark, deformed, extra limbs, disfigured, poorly drawn face, "
            "poorly drawn hands, duplicate, signature")


# ---- one measurement (in its own process) ------------------------------------------------------

def _cuda(device: str) -> bool:
    return device.startswith("cuda")


def _reset_peaks(device: str) -> None:
    import torch

    _sync(device)
    if _cuda(device):
        torch.cuda.reset_peak_memory_stats(torch.device(device))


def _sync(device: str) -> None:
    import torch

    if _cuda(device):
        torch.cuda.synchronize(torch.device(device))


def _peaks(device: str) -> dict:
    import torch

    if not _cuda(device):
        return {}
    card = torch.device(device)  # cuda:N: that card's counters, not card 0's
    return {"peak_allocated_gib": torch.cuda.max_memory_allocated(card) / GIB,
            "peak_reserved_gib": torch.cuda.max_memory_reserved(card) / GIB}


def measure_diffusers(root: Path, a: dict) -> dict:
    import torch
    from diffusers import StableDiffusionPipeline

    from picotui.engine.sampling.samplers import SAMPLERS, make_scheduler, split_sampler_name

    dtype = torch.float16 if _cuda(a["device"]) else torch.float32
    start = time.perf_counter()
    pipe = StableDiffusionPipeline.from_single_file(
        str(root / "models" / "checkpoints" / CHECKPOINT), config=str(root / "diffusers-config"),
        local_files_only=True, torch_dtype=dtype, safety_checker=None, requires_safety_checker=False)
    pipe.to(a["device"])
    pipe.set_progress_bar_config(disable=True)
    name, _ = split_sampler_name(a["sampler"])
    if SAMPLERS[name].timestep:
        pipe.scheduler = make_scheduler(name, dict(pipe.scheduler.config))
    else:  # picotui runs k-diffusion samplers itself; the baseline is diffusers' DPM++ 2M SDE Karras (same cost)
        from diffusers import DPMSolverMultistepScheduler

        pipe.scheduler = DPMSolverMultistepScheduler.from_config(
            pipe.scheduler.config, algorithm_type="sde-dpmsolver++", solver_order=2, use_karras_sigmas=True)
    _sync(a["device"])
    result = {"load_s": time.perf_counter() - start, "mode": f"eager, everything on {a['device']}"}
    _reset_peaks(a["device"])
    times, image = [], None
    for _ in range(1 + a["images"]):
        started = time.perf_counter()
        image = pipe(PROMPT, negative_prompt=NEGATIVE, num_inference_steps=a["steps"], guidance_scale=a["cfg"],
                     width=a["size"], height=a["size"],
                     generator=torch.Generator("cpu").manual_seed(a["seed"])).images[0]
        _sync(a["device"])
        times.append(time.perf_counter() - started)
    return {**result, **_summary(times, a), **_peaks(a["device"]), "image": _keep(image, a, "diffusers")}


def measure_picotui(root: Path, a: dict) -> dict:
    from picotui.engine.events import Finished, Notice
    from picotui.engine.jobs.runner import JobRunner
    from picotui.engine.request import GenerationRequest
    from picotui.paths import Paths

    with tempfile.TemporaryDirectory(prefix="picotui-bench-") as tmp:  # gone even when a run raises
        work = Path(tmp)
        models = root / "models"
        if a.get("taesd"):  # the TAESD preview row: the same models, plus the decoder in vae-approx/
            models = work / "models"
            models.mkdir()
            for sub in ("checkpoints", "loras", "vae", "embeddings"):
                (models / sub).symlink_to(root / "models" / sub)
            (models / "vae-approx").mkdir()
            (models / "vae-approx" / TAESD).symlink_to(root / "taesd" / TAESD)
        paths = Paths(models=models, outputs=work / "outputs", config_file=work / "config.toml",
                      state=work / "state", cache=root / "picotui-cache")  # shared cache: hashes are computed once
        events: list = []
        runner = JobRunner(paths, a["device"], False, a.get("memory_mode"), events.append, speed=a.get("speed"),
                           preview=a.get("preview", True))
        settings = dict(sampler=a["sampler"], steps=a["steps"], cfg=a["cfg"])
        settings.update(a.get("overrides") or {})  # a fast-path row's settings
        request = GenerationRequest(prompt=PROMPT, negative_prompt=NEGATIVE, checkpoint=CHECKPOINT,
                                    width=a["size"], height=a["size"], seed=a["seed"],
                                    **{"rng": "CPU", **settings})  # the baseline's CPU generator
        _reset_peaks(a["device"])  # JobRunner() imported diffusers: load times below exclude imports, as plain's do
        finished: list[Finished] = []
        for job in range(1 + a["images"]):
            before = len(events)
            runner.run_job(job + 1, request, lambda: False)
            finished += [e for e in events[before:] if isinstance(e, Finished)]
        first = finished[0].timings
        times = [f.timings["encode"] + f.timings["denoise"] + f.timings["decode"] for f in finished]
        # the first image: all but the checkpoint load (reported apart, as for plain diffusers) and PNG writing
        times[0] = first["total"] - first["load"] - first["save"]
        result = {"load_s": first["load"], **_summary(times, a), **_peaks(a["device"]),
                  "save_s": sum(f.timings["save"] for f in finished) / len(finished),
                  "mode": f"{runner.plan.label} / {runner.speed.label}" if runner.speed else runner.plan.label,
                  "why": f"{runner.plan.reason}; {runner.speed.reason if runner.speed else ''}",
                  "estimate_gib": runner.plan.estimate_bytes / GIB,  # the memory policy's guess, to check it
                  "notices": [e.message for e in events if isinstance(e, Notice)],
                  "unet_evaluations": finished[-1].unet_evaluations, "steps": request.steps,
                  "image": _keep(finished[-1].image, a, "picotui")}
        result["it_per_s"] = request.steps / result["s_per_image"]
        if a.get("iteration"):
            result["iteration"] = _iteration_costs(runner, request, finished, a)
    return result


def _iteration_costs(runner, request, finished, a) -> dict:
    """What changing one thing costs once the checkpoint is loaded: nothing should reload it."""
    from dataclasses import replace

    from picotui.engine.request import LoraSpec

    manager, library = runner.manager, runner.library
    loads = manager.load_count
    checkpoint = library.resolve(CHECKPOINT, "checkpoint")
    lora = library.resolve(LORA, "lora")
    vae = library.resolve(VAE, "vae")

    def timed(fn) -> float:
        _sync(a["device"])
        started = time.perf_counter()
        fn()
        _sync(a["device"])
        return time.perf_counter() - started

    costs = {"second_image_load_s": finished[1].timings["load"] if len(finished) > 1 else None,
             "unchanged_prompt_encode_s": finished[1].timings["encode"] if len(finished) > 1 else None}
    costs["lora_first_load_s"] = timed(lambda: manager.pipeline_for(checkpoint, None, [(lora, 0.8)]))
    costs["lora_weight_change_s"] = timed(lambda: manager.pipeline_for(checkpoint, None, [(lora, 0.5)]))
    costs["vae_switch_s"] = timed(lambda: manager.pipeline_for(checkpoint, vae, [(lora, 0.5)]))
    costs["vae_back_s"] = timed(lambda: manager.pipeline_for(checkpoint, None, []))
    with_lora = replace(request, loras=(LoraSpec(LORA, 0.5),))
    runner.run_job(99, with_lora, lambda: False)  # an image with the LoRA: a graph must be captured anew
    costs["checkpoint_reloads"] = manager.load_count - loads
    return costs


def _summary(times: list[float], a: dict) -> dict:
    steady = times[1:] or times
    per_image = sum(steady) / len(steady)
    return {"first_image_s": times[0], "s_per_image": per_image, "it_per_s": a["steps"] / per_image}


def _keep(image, a: dict, engine: str) -> str:
    path = Path(a["out"]) / f"{engine}-{a['size']}-{'cap' if a.get('cap_gib') else 'free'}.png"
    image.save(path)
    return str(path)


def child(a: dict) -> dict:
    """One measurement; returns a JSON-able dict (an "error" key when it failed, e.g. out of memory)."""
    os.environ["HF_HUB_OFFLINE"] = os.environ["TRANSFORMERS_OFFLINE"] = "1"
    import torch

    root = Path(a["root"])
    if _cuda(a["device"]):
        card = torch.device(a["device"])
        if card.index is not None:
            torch.cuda.set_device(card)  # streams, graph capture and bare torch.cuda.* calls use this card
        if a.get("cap_gib"):
            total = torch.cuda.get_device_properties(card).total_memory
            torch.cuda.set_per_process_memory_fraction(min(1.0, a["cap_gib"] * GIB / total), card)
    try:
        if a["engine"] == "second-pass":
            return measure_second_pass(root, a, sys.modules[__name__])
        return (measure_diffusers if a["engine"] == "diffusers" else measure_picotui)(root, a)
    except Exception as exc:  # an out-of-memory run is a result, not a crash of the benchmark
        return {"error": error_text(exc)}


def error_text(exc: BaseException) -> str:
    from picotui.engine.errors import is_out_of_memory

    text = " ".join(str(exc).split())
    return "out of memory" if is_out_of_memory(exc) else f"{type(exc).__name__}: {text[:200]}"


# ---- the command line (the device line, the runs, the report) ----------------------------------

def device_line(device: str) -> str:
    import diffusers
    import torch

    if _cuda(device):
        index = torch.device(device).index or 0
        cap = torch.cuda.get_device_capability(index)
        name = f"{torch.cuda.get_device_name(index)} (sm_{cap[0]}{cap[1]}, " \
               f"{torch.cuda.get_device_properties(index).total_memory / GIB:.0f} GiB)"
    else:
        name = f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} threads)"
    return f"{name} · torch {torch.__version__} · diffusers {diffusers.__version__}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="512,768,1024", help="comma-separated square sizes (default 512,768,1024)")
    p.add_argument("--steps", type=int, default=24)
    p.add_argument("--cfg", type=float, default=7.0)
    p.add_argument("--sampler", default="DPM++ 2M SDE Karras")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--images", type=int, default=3, help="timed images after the first (default 3)")
    p.add_argument("--cap-gib", type=float, default=4.0, help="the small-card cap (default 4)")
    p.add_argument("--no-cap", action="store_true", help="skip the runs under the cap")
    p.add_argument("--engines", default="diffusers,picotui")
    p.add_argument("--speed", default=None, help="picotui's speed setting (auto, eager, cuda-graphs)")
    p.add_argument("--memory-mode", default=None, help="picotui's memory mode (default auto)")
    p.add_argument("--device", default="cuda")
    p.add_argument("--tiny", action="store_true", help="the tiny demo-sized model (CPU smoke runs)")
    p.add_argument("--cache", default=str(HERE / "cache"), help="where the model files are kept")
    p.add_argument("--save", action="store_true", help="write the report to benchmarks/results/")
    p.add_argument("--results", default=str(HERE / "results"))
    p.add_argument("--no-fast", action="store_true",
                   help="skip the fast-path rows (CFG 1, NGMS, LCM-LoRA, token merging, previews)")
    p.add_argument("--no-second-pass", action="store_true",
                   help="skip the second pass's rows (hires 512->1024, img2img 768x768)")
    p.add_argument("--only-second-pass", action="store_true",
                   help="only the second pass's rows (under the cap on CUDA unless --no-cap)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print("RESULT " + json.dumps(child(json.loads(args.child))), flush=True)
        return 0

    root = prepare(Path(args.cache), args.tiny)
    with tempfile.TemporaryDirectory(prefix="picotui-bench-images-") as tmp:
        out = Path(tmp)
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
        caps = [None] if args.no_cap or not _cuda(args.device) else [None, args.cap_gib]
        runs = []
        for cap in caps if not args.only_second_pass else []:
            for size in sizes:
                for engine in [e.strip() for e in args.engines.split(",") if e.strip()]:
                    spec = {"engine": engine, "size": size, "cap_gib": cap, "root": str(root), "out": str(out),
                            "device": args.device, "steps": args.steps, "cfg": args.cfg, "sampler": args.sampler,
                            "seed": args.seed, "images": args.images, "speed": args.speed,
                            "memory_mode": args.memory_mode,
                            "iteration": engine == "picotui" and cap is None and size == sizes[0]}
                    under = f" under {cap:g} GiB" if cap else ""
                    print(f"running {engine} at {size}x{size}{under}...", file=sys.stderr)
                    runs.append({**spec, "result": _run_child(spec)})
        header = f"picotui benchmark · {dt.date.today().isoformat()} · {device_line(args.device)}"
        text = report(runs, args, header) if runs else header
        if not args.no_fast and not args.only_second_pass and "picotui" in args.engines:
            fast = []
            for label, extra in fast_rows(args):
                spec = {"engine": "picotui", "size": sizes[0], "cap_gib": None, "root": str(root),
                        "out": str(out), "device": args.device, "steps": args.steps, "cfg": args.cfg,
                        "sampler": args.sampler, "seed": args.seed, "images": args.images, "speed": args.speed,
                        "memory_mode": args.memory_mode, **extra}
                print(f"running the fast path: {label}...", file=sys.stderr)
                fast.append({"label": label, "result": _run_child(spec)})
            text += "\n\n" + fast_report(fast, sizes[0])
        if not args.no_second_pass and "picotui" in args.engines:
            cap = caps[-1]  # the small card's cap, where there is one: these rows are the 4 GiB promise
            spec = {"engine": "second-pass", "cap_gib": cap, "root": str(root), "out": str(out), "tiny": args.tiny,
                    "device": args.device, "steps": args.steps, "cfg": args.cfg, "sampler": args.sampler,
                    "seed": args.seed, "images": args.images, "speed": args.speed, "memory_mode": args.memory_mode}
            print("running the second pass: hires fix and img2img...", file=sys.stderr)
            text += "\n\n" + second_pass_report(_run_child(spec), cap)
        print(text)
        if args.save:
            results = Path(args.results)
            results.mkdir(parents=True, exist_ok=True)
            slug = "".join(c if c.isalnum() else "-" for c in device_line(args.device).split(" · ")[0].split(" (")[0])
            name = f"{dt.date.today().isoformat()}-{slug.strip('-').lower()}{'-tiny' if args.tiny else ''}.txt"
            target = results / name
            target.write_text(text + "\n")
            print(f"saved {target}", file=sys.stderr)
    return 0


# The libraries every measurement imports: a fresh interpreter spends seconds on them (most of a tiny CPU
# run), so a fork server imports them once and each measurement is a fresh fork of it. Importing touches
# no GPU (CUDA starts in the measuring process), so peak counters and the cap still start clean each time.
PRELOAD = ["torch", "diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion"]
_forkserver = None


def _run_child(spec: dict) -> dict:
    """One measurement in its own fresh process; its output goes to a log, and a crash is a result."""
    import multiprocessing

    global _forkserver
    if _forkserver is None:
        _forkserver = multiprocessing.get_context("forkserver")
        _forkserver.set_forkserver_preload(PRELOAD)
    with tempfile.TemporaryDirectory(prefix="picotui-bench-run-") as tmp:
        log = Path(tmp) / "output.txt"
        receive, send = _forkserver.Pipe(duplex=False)
        process = _forkserver.Process(target=_child_process, args=(spec, send, str(log)))
        process.start()
        send.close()
        try:
            result = receive.recv()
        except EOFError:  # it died before sending anything
            result = None
        process.join()
        if result is not None:
            return result
        tail = " ".join(log.read_text(errors="replace").strip().splitlines()[-1:]) if log.is_file() else ""
    return {"error": f"the run crashed (exit {process.exitcode}): {tail[:200]}"}


def _child_process(spec: dict, send, log: str) -> None:
    """In the forked process: what it prints goes to the log (not into the report), the result to the pipe."""
    with open(log, "w") as out:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(out.fileno(), 1)
        os.dup2(out.fileno(), 2)
    send.send(child(spec))
    send.close()


if __name__ == "__main__":
    sys.exit(main())
