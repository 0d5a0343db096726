"""Small pieces every foreign-recipe reader (foreign.py, comfyui.py) shares: k-diffusion's sampler and
schedule names -> A1111's, reading a tool's JSON safely, and putting values under A1111's keys (text, sampler,
LoRA tags in the prompt)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from picotui.engine.errors import PicoError, one_line

MAX_JSON = 1_000_000  # characters: a graph larger than this is not a picture's recipe

# k-diffusion names as ComfyUI (and Fooocus, which runs ComfyUI's samplers) spell them -> A1111's names.
# The _gpu variants draw their SDE noise on the GPU: the same sampler, other noise.
K_SAMPLERS = {"euler": "Euler", "euler_ancestral": "Euler a", "lms": "LMS", "heun": "Heun", "dpm_2": "DPM2",
              "dpm_2_ancestral": "DPM2 a", "dpmpp_2s_ancestral": "DPM++ 2S a", "dpmpp_sde": "DPM++ SDE",
              "dpmpp_sde_gpu": "DPM++ SDE", "dpmpp_2m": "DPM++ 2M", "dpmpp_2m_sde": "DPM++ 2M SDE",
              "dpmpp_2m_sde_gpu": "DPM++ 2M SDE", "dpmpp_3m_sde": "DPM++ 3M SDE", "dpmpp_3m_sde_gpu": "DPM++ 3M SDE",
              "ddim": "DDIM", "uni_pc": "UniPC", "lcm": "LCM", "restart": "Restart"}
K_SCHEDULES = {"normal": "Uniform", "karras": "Karras", "exponential": "Exponential",
               "sgm_uniform": "SGM Uniform", "polyexponential": "Polyexponential", "native": "Automatic"}


def _json(text: str, tool: str) -> dict:
    if len(text) > MAX_JSON:
        raise PicoError(f"The {tool} metadata is too large to be a recipe ({len(text):,} characters).", "metadata")
    try:
        data = json.loads(text)
    except RecursionError:
        raise PicoError(f"The {tool} metadata is nested too deeply to read.", "metadata") from None
    except ValueError as exc:
        raise PicoError(f"The {tool} metadata is damaged ({one_line(exc, 80)}).", "metadata") from None
    if not isinstance(data, dict):
        raise PicoError(f"The {tool} metadata is not a set of settings.", "metadata")
    return data


def _text(value) -> str:
    return value if isinstance(value, str) else ""


def _put(params: dict, key: str, value) -> None:
    """One A1111 key, as text (how A1111's own reader hands values on), when the tool recorded it."""
    if value is not None and not isinstance(value, (dict, list, bool)) and str(value).strip() != "":
        params[key] = str(value).strip()


def _sampler(params: dict, name, schedule, table: dict, tool: str, notes: list[str]) -> None:
    name, schedule = _text(name), _text(schedule)
    if not name:
        return
    if name in table:
        params["Sampler"] = table[name]
        if schedule:
            params["Schedule type"] = K_SCHEDULES.get(schedule, schedule)
    else:
        notes.append(f"Sampler: {one_line(name, 60)} ({tool}'s; picotui has no such sampler)")


def _lora_tags(prompt: str, loras: list[tuple[str, Any]], notes: list[str]) -> str:
    """LoRAs as A1111 writes them, in the prompt (where picotui reads them from)."""
    tags = []
    for name, weight in loras:
        try:
            weight = float(weight)
        except (TypeError, ValueError, OverflowError):
            weight = None
        if not name or weight is None or weight != weight:
            shown = one_line(name, 60) or "(no name)"
            notes.append(f"LoRA: {shown} at {one_line(weight, 20)} (not a usable LoRA entry)")
            continue
        tags.append(f"<lora:{Path(name).stem}:{weight:g}>")
    return " ".join([prompt, *tags]).strip() if tags else prompt
