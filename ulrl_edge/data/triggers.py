"""Backdoor triggers by name, the spec-string parser, and the poisoning helpers.

A spec is ``family[:key=value,…]``, e.g. ``badnets:size=3,pos=br``,
``blend:img=kitty.png,alpha=0.1``, ``sig``, ``wanet:seed=1`` or
``image:trigger.png,mask=mask.png,alpha=0.5`` (the first value of ``blend`` and ``image`` may
omit ``img=``). Families and their parameters (defaults in brackets):

- ``badnets``: ``size`` [3] px, ``pos`` br|bl|tr|tl|c [br], ``margin`` [0] px, ``color``
  white|black|red|green|blue|yellow|cyan|magenta|random|RRGGBB [white], ``seed`` [0].
- ``blend``: ``img`` [seeded uniform noise], ``alpha`` [0.2], ``seed`` [0].
- ``sig``: ``delta`` [40] in 0–255 pixel units, ``freq`` [6].
- ``wanet``: ``k`` [4] control grid, ``s`` [0.5] strength, ``seed`` [0].
- ``image``: ``img`` and ``mask`` (required files), ``alpha`` [1.0].

File paths are taken relative to the working directory and may not contain ``,``.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from ulrl_edge.data import trigger_patterns as patterns
from ulrl_edge.data.poisoning import attack_labels, poison, triggered_test_set
from ulrl_edge.errors import BadInput

__all__ = [
    "FAMILIES",
    "Trigger",
    "attack_labels",
    "make_trigger",
    "parse_trigger",
    "poison",
    "triggered_test_set",
]

_REQUIRED = object()


@dataclass(frozen=True)
class Param:
    """One parameter of a trigger family: its kind, default and allowed range."""

    kind: str  # int | float | choice | color | path
    default: Any
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()

    def convert(self, key: str, value: Any) -> Any:
        """A typed, checked value from a spec string or a Python value (ValueError if bad)."""
        if self.kind in ("int", "float"):
            number = self._number(key, value)
        elif self.kind == "choice":
            text = str(value).strip().lower()
            if text not in self.choices:
                raise ValueError(f"{key} must be one of {'|'.join(self.choices)}, got {value!r}")
            return text
        elif self.kind == "color":
            text = str(value).strip().lower().removeprefix("#")
            if (
                text not in patterns.COLORS
                and text != "random"
                and not re.fullmatch(r"[0-9a-f]{6}", text)
            ):
                names = "|".join([*patterns.COLORS, "random"])
                raise ValueError(f"{key} must be {names} or a hex RRGGBB colour, got {value!r}")
            return text
        else:  # path
            text = str(value).strip()
            if not text or "," in text:
                raise ValueError(f"{key} must be a file path without commas, got {value!r}")
            if not Path(text).is_file():
                raise ValueError(f"{key} file not found: {text}")
            patterns.load_rgb(text)  # BadInput naming the file when it cannot be read
            return text
        if (self.low is not None and number < self.low) or (
            self.high is not None and number > self.high
        ):
            raise ValueError(f"{key} must be between {self.low:g} and {self.high:g}, got {value}")
        return number

    def _number(self, key: str, value: Any) -> float:
        kind = "an integer" if self.kind == "int" else "a number"
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValueError(f"{key} must be {kind}, got {value!r}")
        try:
            if self.kind == "int":
                if isinstance(value, float) and not value.is_integer():
                    raise ValueError
                return int(value) if not isinstance(value, str) else int(value.strip(), 10)
            number = float(value)
        except ValueError:
            raise ValueError(f"{key} must be {kind}, got {value!r}") from None
        if not math.isfinite(number):
            raise ValueError(f"{key} must be finite, got {value!r}")
        return number


@dataclass(frozen=True)
class Family:
    """A trigger family: its parameters, the one that may be given positionally, its effect."""

    params: dict[str, Param]
    effect: Callable[[np.ndarray, dict[str, Any], str], np.ndarray]
    positional: str | None = None


FAMILIES: dict[str, Family] = {
    "badnets": Family(
        {
            "size": Param("int", 3, 1, 4096),
            "pos": Param("choice", "br", choices=patterns.POSITIONS),
            "margin": Param("int", 0, 0, 4096),
            "color": Param("color", "white"),
            "seed": Param("int", 0, 0, 2**32 - 1),
        },
        patterns.badnets,
    ),
    "blend": Family(
        {
            "img": Param("path", None),
            "alpha": Param("float", 0.2, 0.0, 1.0),
            "seed": Param("int", 0, 0, 2**32 - 1),
        },
        patterns.blend,
        positional="img",
    ),
    "sig": Family(
        {"delta": Param("float", 40.0, 0.0, 255.0), "freq": Param("int", 6, 1, 4096)},
        patterns.sig,
    ),
    "wanet": Family(
        {
            "k": Param("int", 4, 2, 64),
            "s": Param("float", 0.5, 0.0, 10.0),
            "seed": Param("int", 0, 0, 2**32 - 1),
        },
        patterns.wanet,
    ),
    "image": Family(
        {
            "img": Param("path", _REQUIRED),
            "mask": Param("path", _REQUIRED),
            "alpha": Param("float", 1.0, 0.0, 1.0),
        },
        patterns.image,
        positional="img",
    ),
}
ALIASES = {"blended": "blend", "patch": "badnets", "warp": "wanet"}


@dataclass(frozen=True, eq=False)
class Trigger:
    """A named, fully parameterised trigger; equal when name and parameters are equal.

    Attributes:
        name: The family (``badnets``, ``blend``, ``sig``, ``wanet``, ``image``).
        params: Every parameter of the family, defaults filled in (read-only).
    """

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Trigger)
            and self.name == other.name
            and dict(self.params) == dict(other.params)
        )

    def __hash__(self) -> int:
        return hash((self.name, tuple(sorted(self.params.items()))))

    def __reduce__(self):  # mappingproxy cannot be pickled; workers may need triggers
        return _rebuild, (self.name, dict(self.params))

    def apply(self, x: np.ndarray, *, channels: str | None = None) -> np.ndarray:
        """Triggered copies of canonical images.

        Args:
            x: float32 N×H×W×C in [0, 1] (C = 1 or 3).
            channels: The images' channel order (``rgb``, ``bgr`` or ``gray``), so that
                coloured patterns land in the right channels; by default ``gray`` for one
                channel and ``rgb`` for three.

        Returns:
            float32 N×H×W×C in [0, 1]; the same output for the same input, always.
        """
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 4 or x.shape[-1] not in (1, 3):
            raise ValueError(f"triggers take N×H×W×C images with C = 1 or 3, got {x.shape}")
        channels = channels or ("gray" if x.shape[-1] == 1 else "rgb")
        if (channels == "gray") != (x.shape[-1] == 1):
            raise ValueError(f"channels {channels!r} do not match images of shape {x.shape}")
        out = FAMILIES[self.name].effect(x, dict(self.params), channels)
        return np.ascontiguousarray(np.clip(out, 0.0, 1.0), dtype=np.float32)

    def to_spec(self) -> str:
        """The canonical spec string; ``parse_trigger(t.to_spec()) == t``."""
        items = [
            f"{key}={_format(value)}" for key, value in self.params.items() if value is not None
        ]
        return self.name + (":" + ",".join(items) if items else "")


def _rebuild(name: str, params: dict[str, Any]) -> Trigger:
    return Trigger(name, MappingProxyType(dict(params)))


def _format(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def _family(name: str, spec: str) -> tuple[str, Family]:
    key = ALIASES.get(name.strip().lower(), name.strip().lower())
    if key not in FAMILIES:
        near = difflib.get_close_matches(key, [*FAMILIES, *ALIASES], n=1)
        hint = f" (did you mean '{near[0]}'?)" if near else ""
        raise BadInput(
            f"trigger spec {spec!r}: unknown trigger {name!r}{hint}; known: {', '.join(FAMILIES)}"
        )
    return key, FAMILIES[key]


def make_trigger(name: str, *, _spec: str | None = None, **params: Any) -> Trigger:
    """A trigger from a family name and parameter values (strings or Python values).

    Raises:
        BadInput: Unknown family or parameter, or a value of the wrong type or range.
    """
    spec = _spec if _spec is not None else name
    key, family = _family(name, spec)
    values: dict[str, Any] = {}
    for pname in params:
        if pname not in family.params:
            near = difflib.get_close_matches(pname, family.params, n=1)
            hint = f" (did you mean '{near[0]}'?)" if near else ""
            raise BadInput(
                f"trigger spec {spec!r}: unknown parameter {pname!r}{hint}; "
                f"{key} takes {', '.join(family.params)}"
            )
    for pname, param in family.params.items():
        if param.default is _REQUIRED and params.get(pname) is None:
            raise BadInput(f"trigger spec {spec!r}: {key} needs {pname}=FILE")
    for pname, param in family.params.items():
        if params.get(pname) is None:
            values[pname] = param.default
            continue
        try:
            values[pname] = param.convert(pname, params[pname])
        except ValueError as err:
            raise BadInput(f"trigger spec {spec!r}: {err}") from None
    return Trigger(key, MappingProxyType(values))


def parse_trigger(spec: str) -> Trigger:
    """Parse ``family[:key=value,…]`` (see the module docstring for families and keys).

    Raises:
        BadInput: A one-line message quoting the spec and saying what is wrong.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise BadInput(f"empty trigger spec; give one of {', '.join(FAMILIES)}")
    name, _, rest = spec.strip().partition(":")
    key, family = _family(name, spec)
    given: dict[str, str] = {}
    if rest.strip():
        for i, item in enumerate(rest.split(",")):
            pname, eq, value = (part.strip() for part in item.partition("="))
            if not eq:
                if i > 0 or family.positional is None or pname.lower() in family.params:
                    raise BadInput(f"trigger spec {spec!r}: {item.strip()!r} is not key=value")
                pname, value = family.positional, pname
            pname = pname.lower()
            if not value:
                raise BadInput(f"trigger spec {spec!r}: {pname!r} has no value")
            if pname in given:
                raise BadInput(f"trigger spec {spec!r}: {pname!r} is given twice")
            given[pname] = value
    return make_trigger(key, _spec=spec, **given)
