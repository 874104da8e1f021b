"""What every defense's frozen config does the same way: apply overrides, check settings.

A config class defines ``with_overrides(self, **overrides)`` as
``return apply_overrides(self, "FP", overrides)`` and, when some values cannot run, a
``validate(self)`` that calls :func:`require` with its checks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import fields, replace
from typing import Any, TypeVar

from ulrl_edge.errors import BadInput

Config = TypeVar("Config")


def require(label: str, checks: Iterable[tuple[bool, str]]) -> None:
    """Raise BadInput ``"<label> setting: <message>"`` for the first failed check."""
    for ok, message in checks:
        if not ok:
            raise BadInput(f"{label} setting: {message}")


def apply_overrides(config: Config, label: str, overrides: Mapping[str, Any]) -> Config:
    """A copy of ``config`` with ``overrides`` applied, then validated.

    None values mean "not given" and are ignored. A tuple-valued field accepts any sequence
    (from TOML or ``--set``) and keeps the element type of its current value.

    Raises:
        BadInput: For a setting that does not exist or (via ``validate``) cannot run.
    """
    unknown = sorted(set(overrides) - {f.name for f in fields(config)})
    if unknown:
        raise BadInput(f"unknown {label} setting(s): {', '.join(unknown)}")
    changes = {}
    for name, value in overrides.items():
        if value is None:
            continue
        current = getattr(config, name)
        if isinstance(current, tuple):
            value = tuple(type(current[0])(item) for item in value) if current else tuple(value)
        changes[name] = value
    out = replace(config, **changes)
    validate = getattr(out, "validate", None)
    if validate is not None:
        validate()
    return out
