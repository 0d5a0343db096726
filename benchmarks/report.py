"""The benchmark's main table: each run's load time, s/image, it/s and peak VRAM, the ratios of plain diffusers
to picotui, and picotui's iteration costs. bench.py measures the runs."""

from __future__ import annotations


def _fmt(value, spec: str = ".2f", unit: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{unit}"


def report(runs: list[dict], args, header: str) -> str:
    from PIL import Image, ImageChops

    lines = [header, f"{'tiny' if args.tiny else 'full-size'} SD1.5 (random weights, LDM single file"
                     f"{'' if args.tiny else ', fp16'}) · {args.sampler} · {args.steps} steps · CFG {args.cfg:g} · "
                     f"seed {args.seed} · {args.images} timed image(s) after a first one", ""]
    head = f"{'size':<10}{'engine':<11}{'cap':<8}{'load s':>8}{'1st img s':>11}{'s/image':>9}{'it/s':>8}" \
           f"{'alloc GiB':>11}{'resv GiB':>10}  mode"
    lines += [head, "-" * len(head)]
    for r in runs:
        res = r["result"]
        cap = f"{r['cap_gib']:g} GiB" if r.get("cap_gib") else "-"
        prefix = f"{str(r['size']) + 'x' + str(r['size']):<10}{r['engine']:<11}{cap:<8}"
        if "error" in res:
            lines.append(prefix + f"  {res['error']}")
            continue
        lines.append(prefix + f"{_fmt(res['load_s']):>8}{_fmt(res['first_image_s']):>11}{_fmt(res['s_per_image'], '.3f'):>9}"
                     f"{_fmt(res['it_per_s'], '.1f'):>8}{_fmt(res.get('peak_allocated_gib')):>11}"
                     f"{_fmt(res.get('peak_reserved_gib')):>10}  {res['mode']}")
    lines += ["", "ratios, plain diffusers ÷ picotui (above 1: picotui is faster / leaner):"]
    by_key = {(r["size"], r["engine"], r.get("cap_gib")): r["result"] for r in runs}
    for (size, engine, cap), ours in by_key.items():
        theirs = by_key.get((size, "diffusers", cap))
        if engine != "picotui" or theirs is None:
            continue
        label = f"  {size}x{size}{' under ' + format(cap, 'g') + ' GiB' if cap else ''}: "
        if "error" in ours or "error" in theirs:
            lines.append(label + f"diffusers: {theirs.get('error', 'ok')}; picotui: {ours.get('error', 'ok')}")
            continue
        parts = [f"s/image {theirs['s_per_image'] / ours['s_per_image']:.2f}x",
                 f"first image {theirs['first_image_s'] / ours['first_image_s']:.2f}x",
                 f"load {theirs['load_s'] / max(ours['load_s'], 1e-9):.2f}x"]
        if ours.get("peak_reserved_gib"):
            parts.append(f"peak reserved {theirs['peak_reserved_gib'] / ours['peak_reserved_gib']:.2f}x")
        diff = ImageChops.difference(Image.open(theirs["image"]).convert("RGB"),
                                     Image.open(ours["image"]).convert("RGB"))
        parts.append(f"image max pixel diff {max(high for _low, high in diff.getextrema())}/255")
        lines.append(label + ", ".join(parts))
    for r in runs:
        res = r["result"]
        if r["engine"] == "picotui" and "error" not in res:
            cap = f" (cap {r['cap_gib']:g} GiB)" if r.get("cap_gib") else ""
            measured = res.get("peak_reserved_gib")
            check = f"; policy estimated {res['estimate_gib']:.2f} GiB, measured {measured:.2f}" if measured else ""
            lines.append(f"  picotui {r['size']}x{r['size']}{cap}: {res['why']}{check}; "
                         f"PNG writing {res['save_s']:.3f} s")
            lines += [f"    notice: {n}" for n in res.get("notices", []) if "demo" not in n]
        if "iteration" in res:
            it = res["iteration"]
            lines += ["", f"iteration costs (picotui, {r['size']}x{r['size']}, checkpoint loaded):",
                      f"  second image: load {_fmt(it['second_image_load_s'], '.3f')} s, "
                      f"unchanged prompt encode {_fmt(it['unchanged_prompt_encode_s'], '.4f')} s",
                      f"  LoRA: first load {it['lora_first_load_s']:.3f} s, weight change "
                      f"{it['lora_weight_change_s']:.4f} s; VAE switch {it['vae_switch_s']:.3f} s, back to the "
                      f"checkpoint's own {it['vae_back_s']:.3f} s; checkpoint reloads: {it['checkpoint_reloads']}"]
    return "\n".join(lines)
