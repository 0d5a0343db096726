"""Keys as the user has them: the bindings' own keys, changed by the [keymap] table in config.toml.

Textual applies the keymap itself (`App.set_keymap`: binding id -> "key" or "key1,key2"); this module
says which ids exist and how a binding's keys read once the keymap is applied, for the keys screen (F2)
and the command palette's hints.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from textual.binding import Binding


def unknown_ids(keymap: Mapping[str, str], bindings: Iterable[Binding]) -> list[str]:
    """The keymap's ids that no binding has, in the keymap's order."""
    known = {binding.id for binding in bindings if binding.id}
    return [binding_id for binding_id in keymap if binding_id not in known]


def keys_of(binding: Binding, keymap: Mapping[str, str]) -> str:
    """The binding's keys as the user presses them: "ctrl+g", "escape / q", "?"."""
    if binding.id and binding.id in keymap:
        return " / ".join(key.strip() for key in keymap[binding.id].split(","))
    return binding.key_display or binding.key.replace(",", " / ")


def keys_for_action(action: str, bindings: Iterable[Binding], keymap: Mapping[str, str]) -> str | None:
    """Every key that runs `action` ("f2 / ?"), or None when no binding does."""
    keys = [keys_of(binding, keymap) for binding in bindings if binding.action == action]
    return " / ".join(keys) or None


def picotui_bindings() -> list[Binding]:
    """Every binding of picotui's screens and widgets (those imported so far: the app imports them all),
    so a keymap entry for a dialog's key is known too."""
    from textual.dom import DOMNode

    found: list[Binding] = []
    classes, seen = [DOMNode], set()
    while classes:
        cls = classes.pop()
        classes.extend(sub for sub in cls.__subclasses__() if sub not in seen)
        seen.add(cls)
        if cls.__module__.startswith("picotui."):
            found += [b for b in cls.__dict__.get("BINDINGS", []) if isinstance(b, Binding)]
    return found
