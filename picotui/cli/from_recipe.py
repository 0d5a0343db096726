"""`--from FILE`: a recipe read from an image (picotui's, A1111's, another tool's) as the base request of
`picotui generate` and `picotui grid`; the options given on the command line replace its settings, the rest
(the second pass included) stay the recipe's.

Which options were given is recorded by the parser's actions (`mark_given_options`): an option's value
alone cannot tell "--steps 24" from the default 24.
"""

from __future__ import annotations

import argparse
import sys

from picotui.engine.errors import RequestError

GIVEN = "given_options"  # the namespace attribute that lists the destinations set on the command line


class _Store(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        # an optional positional (nargs="?") left out is "stored" with its default: not given
        if self.option_strings or values is not self.default:
            _given(namespace).add(self.dest)


class _Append(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        items = list(getattr(namespace, self.dest, None) or [])
        setattr(namespace, self.dest, [*items, values])
        _given(namespace).add(self.dest)


def _given(namespace) -> set:
    if not isinstance(getattr(namespace, GIVEN, None), set):
        setattr(namespace, GIVEN, set())
    return getattr(namespace, GIVEN)


def mark_given_options(parser: argparse.ArgumentParser) -> None:
    """Options added to `parser` from now on (plain and `append` ones) record that they were given."""
    parser.register("action", None, _Store)
    parser.register("action", "store", _Store)
    parser.register("action", "append", _Append)


def given(args: argparse.Namespace) -> set[str]:
    return set(getattr(args, GIVEN, None) or ())


def recipe_request(path: str):
    """The request a picture's recipe makes; what it cannot reproduce is printed as notes on stderr."""
    from picotui.cli.common import terminal_safe
    from picotui.engine.recipes.metadata import read_recipe

    recipe = read_recipe(path)  # PicoError: one line, exit 2
    for line in recipe.unmatched:
        print(f"note: {terminal_safe(line)}", file=sys.stderr)
    return recipe.request


# Options that set one request field each, as build_request reads them.
_FIELDS = {"negative": "negative_prompt", "checkpoint": "checkpoint", "vae": "vae", "steps": "steps", "cfg": "cfg",
           "width": "width", "height": "height", "clip_skip": "clip_skip", "batch_count": "batch_count",
           "rng": "rng", "variation_strength": "variation_strength", "seed_resize_from": "seed_resize_from",
           "ensd": "eta_noise_seed_delta", "token_merging": "token_merging_ratio", "ngms": "ngms"}
_SECOND_PASS = ("init_image", "strength", "resize_mode", "hires", "hires_resize", "hires_upscaler", "hires_steps",
                "hires_strength", "hires_sampler", "hires_schedule", "hires_prompt", "hires_negative")


def overrides(args: argparse.Namespace, base, parse_lora, second_pass_fields) -> dict:
    """The request fields the given options set on top of the recipe `base`."""
    chosen = given(args)
    fields = {field: getattr(args, dest) for dest, field in _FIELDS.items() if dest in chosen}
    if "text" in chosen and "prompt" in chosen:
        raise RequestError("Give the prompt once: either as the first argument or with --prompt.")
    for dest in ("text", "prompt"):
        if dest in chosen:
            fields["prompt"] = getattr(args, dest)
    if "lora" in chosen:
        fields["loras"] = tuple(parse_lora(x) for x in args.lora)
    if "sampler" in chosen:  # a sampler alone takes its automatic schedule, as without --from
        fields["sampler"], fields["schedule_type"] = args.sampler, "Automatic"
    if "schedule_type" in chosen:
        fields["schedule_type"] = args.schedule_type
    for dest, field in (("seed", "seed"), ("variation_seed", "variation_seed")):
        if dest in chosen:
            value = getattr(args, dest)
            fields[field] = None if str(value).strip().lower() in ("random", "-1", "") else value
    if chosen & set(_SECOND_PASS):
        fields.update(init_image=None, init_image_hash=None, hires=False)
        fields.update(second_pass_fields(_second_pass_namespace(args, chosen, base)))
    return fields


def _second_pass_namespace(args: argparse.Namespace, chosen: set[str], base) -> argparse.Namespace:
    """The second-pass options as given, the others filled from the recipe where it has the same kind of
    second pass (a new --hires keeps the recipe's hires upscaler, steps ...; --strength alone changes the
    recipe's img2img or hires strength)."""
    values = {dest: getattr(args, dest) if dest in chosen else None for dest in _SECOND_PASS}
    values["resize_mode"] = args.resize_mode
    wants_hires = bool(chosen & {"hires", "hires_resize"})
    wants_img2img = "init_image" in chosen
    if base.init_image and not wants_hires:
        values["init_image"] = values["init_image"] or base.init_image
        values["resize_mode"] = args.resize_mode if "resize_mode" in chosen else base.resize_mode
        values["strength"] = values["strength"] or base.denoising_strength
    elif base.hires and not wants_img2img:
        if not wants_hires:
            values["hires"] = base.hires_scale if base.hires_resize is None else None
            values["hires_resize"] = "x".join(map(str, base.hires_resize)) if base.hires_resize else None
        inherited = {"hires_upscaler": base.hires_upscaler, "hires_steps": base.hires_steps or None,
                     "hires_sampler": base.hires_sampler or None, "hires_schedule": base.hires_schedule_type or None,
                     "hires_prompt": base.hires_prompt or None, "hires_negative": base.hires_negative_prompt or None}
        for dest, value in inherited.items():
            values[dest] = values[dest] if dest in chosen else value
        if "strength" not in chosen and "hires_strength" not in chosen:
            values["hires_strength"] = base.denoising_strength
    return argparse.Namespace(**values)
