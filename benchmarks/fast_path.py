"""The fast path's rows of the benchmark (issue 15): what each row changes from the default job, and the
table of s/image and UNet evaluations per image beside the default path. bench.py runs the rows."""

from __future__ import annotations

LCM_LORA = "lcm-lora-sdv1-5.safetensors"  # random weights under the name users download it by: a few-step LoRA


def fast_rows(args) -> list[tuple[str, dict]]:
    """The fast path's rows (issue 15), each a label and what it changes from the default job."""
    from picotui.engine.models.few_step import profile_from_text

    lcm = profile_from_text(LCM_LORA, "name")
    rows = [("default", {}), ("CFG 1", {"overrides": {"cfg": 1.0}}),
            ("NGMS 2", {"overrides": {"ngms": 2.0}})]
    rows += [(f"LCM-LoRA {n} steps, CFG 1, {lcm.sampler}",
              {"overrides": {"steps": n, "cfg": 1.0, "sampler": lcm.sampler, "loras": [[LCM_LORA, 1.0]]}})
             for n in (4, 6, 8)]
    rows += [(f"token merging {r:g}", {"overrides": {"token_merging_ratio": r}}) for r in (0.3, 0.5)]
    rows += [("preview off", {"preview": False}), ("colour preview (default)", {"preview": True}),
             ("TAESD preview", {"preview": True, "taesd": True})]
    return rows


def fast_report(rows: list[dict], size: int) -> str:
    """s/image and UNet evaluations/image per fast-path row, and both as ratios to the default row."""
    base = next((r["result"] for r in rows if r["label"] == "default" and "error" not in r["result"]), None)
    head = f"{'setting':<34}{'steps':>6}{'s/image':>10}{'s/step':>9}{'UNet/img':>10}{'s/img vs default':>18}" \
           f"{'UNet vs default':>17}"
    lines = [f"fast path (picotui, {size}x{size}, same run; ratios: default ÷ row, above 1 is faster):", head,
             "-" * len(head)]
    for r in rows:
        res = r["result"]
        if "error" in res:
            lines.append(f"{r['label']:<34}  {res['error']}")
            continue
        speedup = f"{base['s_per_image'] / res['s_per_image']:.2f}x" if base else "-"
        fewer = f"{base['unet_evaluations'] / res['unet_evaluations']:.2f}x" if base else "-"
        lines.append(f"{r['label']:<34}{res['steps']:>6}{res['s_per_image']:>10.3f}"
                     f"{res['s_per_image'] / res['steps']:>9.3f}{res['unet_evaluations']:>10}{speedup:>18}"
                     f"{fewer:>17}")
    return "\n".join(lines)
