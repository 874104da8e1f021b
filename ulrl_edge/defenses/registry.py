"""Defenses by name: ``@register_defense("ulrl", config_cls=ULRLConfig)``.

The registry maps a method name to the function that runs it and the frozen dataclass that
configures it, so the CLI and the pipeline can pick a method from a string.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ulrl_edge.errors import BadInput

DefenseFn = Callable[..., Any]

# Modules that register defenses when imported; loaded on the first look-up so that
# ``import ulrl_edge.defenses.registry`` stays cheap.
_BUILTIN_MODULES = (
    "ulrl_edge.defenses.ulrl",
    "ulrl_edge.defenses.ft",
    "ulrl_edge.defenses.fp",
    "ulrl_edge.defenses.rnp",
    "ulrl_edge.defenses.anp",
    "ulrl_edge.defenses.ibau",
    "ulrl_edge.defenses.sau",
)


@dataclass(frozen=True)
class DefenseEntry:
    """One registered defense.

    Attributes:
        name: The method name users type (``ulrl``, ``ft``).
        fn: ``fn(model, clean, config=None, progress=None) -> DefenseResult``.
        config_cls: Its frozen config dataclass; ``config_cls()`` is the default setting.
        summary: First line of the function's docstring, for ``--help`` and errors.
        amp: Its loops are safe under mixed precision (they step through
            :func:`~ulrl_edge.defenses.precision.backward_and_step`), so AMP may run it.
    """

    name: str
    fn: DefenseFn
    config_cls: type
    summary: str = ""
    amp: bool = False

    def __call__(self, *args, **kwargs):
        return self.fn(*args, **kwargs)


_REGISTRY: dict[str, DefenseEntry] = {}
_loaded = False


def register_defense(
    name: str, config_cls: type, *, amp: bool = False
) -> Callable[[DefenseFn], DefenseFn]:
    """Class the decorated function as the defense ``name`` (``amp``: see DefenseEntry).

    Raises:
        ValueError: When ``name`` is already taken by another function (a bug, not user input).
    """

    def decorate(fn: DefenseFn) -> DefenseFn:
        existing = _REGISTRY.get(name)
        if existing is not None and existing.fn is not fn:
            raise ValueError(f"defense {name!r} is registered twice")
        summary = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        _REGISTRY[name] = DefenseEntry(name, fn, config_cls, summary, amp)
        return fn

    return decorate


def _load_builtins() -> None:
    global _loaded
    if not _loaded:
        for module in _BUILTIN_MODULES:
            importlib.import_module(module)
        _loaded = True


def available_defenses() -> list[str]:
    """Names of every registered defense, sorted."""
    _load_builtins()
    return sorted(_REGISTRY)


def get_defense(name: str) -> DefenseEntry:
    """The defense registered as ``name``.

    Raises:
        BadInput: For an unknown name; the message lists the valid names and the closest one.
    """
    _load_builtins()
    entry = _REGISTRY.get(name)
    if entry is not None:
        return entry
    names = sorted(_REGISTRY)
    close = difflib.get_close_matches(str(name), names, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise BadInput(f"unknown defense {name!r}; choose one of: {', '.join(names)}.{hint}")
