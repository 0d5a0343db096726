"""Naming the upscalers the header sniff could not (a .pth, or an architecture like SwinIR, DAT, HAT): each such
file is loaded once on the CPU through spandrel, and its architecture and scale (or why it is no upscaler) are
remembered in the library's cache, so lists show them from then on. Pickles only with the pickle opt-in."""

from __future__ import annotations

from collections.abc import Callable

from picotui.engine.errors import ModelError


def unnamed_upscalers(library) -> list:
    """Upscaler files whose architecture no list knows yet (and that may be opened)."""
    return [mf for mf in library.files("upscaler") if mf.kind == "upscaler" and mf.architecture is None
            and mf.size > 0 and (mf.usable or (mf.is_pickle and library.allow_pickle))]


def describe_upscalers(library, on_file: Callable | None = None) -> int:
    """Load each unnamed upscaler (see the module docstring); returns how many were read. Never raises for a
    file: a model that cannot be used is remembered with its one-line reason."""
    from picotui.engine.upscaling.architectures import SpandrelMissing, registry
    from picotui.engine.upscaling.loading import load_upscaler

    todo = unnamed_upscalers(library)
    if not todo:
        return 0
    try:
        registry()
    except SpandrelMissing:
        return 0  # the lists say "known when first used"; using it says spandrel is missing
    for mf in todo:
        if on_file is not None:
            on_file(mf)
        try:
            loaded = load_upscaler(mf.path, library.allow_pickle)
        except ModelError as exc:
            library.remember_upscaler(mf.path, None, None, str(exc))
            continue
        library.remember_upscaler(mf.path, loaded.architecture, loaded.scale)
        del loaded
    library.scan()
    return len(todo)
