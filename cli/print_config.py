"""``--print-config``: the configuration a command would run with, as TOML or JSON.

The TOML text is a file that ``--config`` reads back unchanged: the command's flags with their
final values (command line over config file over defaults), then a ``[set]`` table with every
setting of the defense after preset, file and ``--set``. Values the tool picks from the
clean samples at run time, and flags left unset, are comments.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from ulrl_edge.cli.config_file import NOT_IN_FILES, PANEL, config_settings, is_option

PrintConfigOpt = Annotated[
    bool,
    typer.Option(
        "--print-config",
        rich_help_panel=PANEL,
        help="Print the resolved configuration (as TOML, or JSON with --json) and exit "
        "without running; the clean samples are not read.",
    ),
]



def resolved_flags(ctx: Any) -> dict[str, Any]:
    """Every file-settable flag of the running command with its final value (None: unset)."""
    out: dict[str, Any] = {}
    for param in ctx.command.params:
        if not is_option(param) or param.name in NOT_IN_FILES:
            continue
        if "--json" in param.opts or param.name not in ctx.params:
            continue
        key = next((o[2:] for o in param.opts if o.startswith("--")), str(param.name))
        value = _jsonable(ctx.params[param.name])
        if key in ("mean", "std") and isinstance(value, str):  # "0.5,0.5,0.5" on the command line
            value = [float(v) for v in value.split(",")]
        out[key] = value
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    return value


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return ("-" if value < 0 else "") + ("nan" if math.isnan(value) else "inf")
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def to_toml(
    flags: Mapping[str, Any],
    settings: Mapping[str, Any],
    header: list[str],
    footer: list[str] | None = None,
) -> str:
    """A config file that ``--config`` reads back: flags, then ``[set]``; None → a comment."""
    lines = [f"# {line}" for line in header]
    for key, value in flags.items():
        if value is None:
            lines.append(f"# {key} = (not set)")
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    if settings:
        lines += ["", "[set]"]
        for key, value in settings.items():
            if value is None:
                lines.append(f"# {key} = (chosen from the clean samples at run time)")
            else:
                lines.append(f"{key} = {_toml_value(value)}")
    if footer:
        lines += [""] + [f"# {line}" for line in footer]
    return "\n".join(lines) + "\n"


def print_resolved(
    ctx: Any,
    model: Path,
    defense: Mapping[str, Any],
    preprocess: Mapping[str, Any],
    *,
    as_json: bool,
) -> None:
    """``--print-config``: the running command's resolved flags and defense settings.

    Without ``--json`` the text is a TOML file that ``--config`` reads back unchanged; the
    preprocessing resolved from the model (metadata, ``--preprocess`` file, flags) is shown
    as comments, since pinning it as flags would also allow resizing.
    """
    from ulrl_edge.cli.common import emit_json

    path, _ = config_settings(ctx)
    flags = resolved_flags(ctx)
    clean = flags.get("clean")
    if as_json:
        emit_json({
            "command": ctx.info_name,
            "model": str(model),
            "config_file": str(path) if path else None,
            "flags": flags,
            "defense": dict(defense),
            "preprocess": dict(preprocess),
            "clean_exists": None if clean is None else Path(clean).exists(),
        })
        return
    settings = {k: v for k, v in defense.items() if k not in ("preset", "seed")}
    header = [
        f"ulrl-edge {ctx.info_name} {model}: resolved configuration"
        + (f" (config file {path})" if path else ""),
        f"use it with: ulrl-edge {ctx.info_name} MODEL --config FILE.toml",
    ]
    if clean is not None and not Path(clean).exists():
        header.append(f"note: the clean samples {clean} do not exist (yet); they were not read")
    footer = ["preprocessing resolved from the model, --preprocess and the flags:"] + [
        f"  {k} = {_toml_value(v) if v is not None else '(none)'}"
        for k, v in sorted(preprocess.items())
    ]
    sys.stdout.write(to_toml(flags, settings, header, footer))
    sys.stdout.flush()
