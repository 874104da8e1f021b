"""``--set KEY=VALUE`` overrides for a defense's frozen config dataclass.

Values are converted to the type of the field's default, so a vetting team can pin any
setting from the command line or a script without a flag for each.
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any

from ulrl_edge.errors import BadInput

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _convert(name: str, text: str, default: Any) -> Any:
    text = text.strip()
    if text.lower() in ("none", "null"):
        return None
    try:
        if isinstance(default, bool):
            if text.lower() not in _TRUE | _FALSE:
                raise ValueError
            return text.lower() in _TRUE
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float) or default is None and _looks_numeric(text):
            return float(text) if any(c in text for c in ".eE") else int(text)
        if isinstance(default, tuple):
            item = type(default[0]) if default else float
            return tuple(item(p) for p in text.replace(";", ",").split(",") if p.strip())
    except ValueError:
        kind = type(default).__name__ if default is not None else "number"
        raise BadInput(f"--set {name}={text}: expected a {kind}") from None
    return text


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def parse_overrides(config_cls: type, pairs: list[str]) -> dict[str, Any]:
    """Turn ``["relearn_epochs=10", "penalty=cos"]`` into typed overrides for ``config_cls``.

    Raises:
        BadInput: A pair without ``=``, an unknown key (with a suggestion), or a bad value.
    """
    defaults = {f.name: getattr(config_cls(), f.name) for f in dataclasses.fields(config_cls)}
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise BadInput(f"--set {pair!r}: expected KEY=VALUE")
        key, value = pair.split("=", 1)
        key = key.strip().replace("-", "_")
        if key not in defaults:
            close = difflib.get_close_matches(key, defaults, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise BadInput(f"--set: unknown setting {key!r}{hint}")
        out[key] = _convert(key, value, defaults[key])
    return out
