"""``--config FILE.toml``: pin a command's flags in a file; flags on the command line win.

Top-level keys are the command's long flag names, with ``-`` or ``_`` (``max-acc-drop = 0.01``,
``preset = "paper"``, ``mean = [0.485, 0.456, 0.406]``, ``size = [224, 224]``); a ``[set]`` table
holds defense settings (``relearn_epochs = 10``), as ``--set`` would. A table named after a
command (``[purify]``, ``[scan]``, …) holds keys for that command only, so that one file can
serve several commands; tables of other commands are skipped.

The eager ``--config`` callback reads the file before the other options are processed and
fills ``ctx.default_map``, Click's layer under the command line: a flag that is given wins.
Each value first goes through its option's own parsing here, so that a wrong key or type
exits 3 naming the key and the file (not 2, naming only the flag).
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ulrl_edge.errors import BadInput, MissingDependency

PANEL = "Configuration"
_META = "ulrl_edge.config_file"
_MAX_BYTES = 1 << 20
# Options that say how to run, not what to do: never read from a file.
NOT_IN_FILES = {"help", "config", "print_config", "quiet", "json", "settings"}
COMMANDS = ("inspect", "roundtrip", "verify", "scan", "purify", "export", "demo")


def _load_toml(path: Path) -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError:
            raise MissingDependency(
                "--config needs Python >= 3.11 or the 'tomli' package (pip install tomli)"
            ) from None
    if not path.is_file():
        raise BadInput("config file not found", path)
    if path.stat().st_size > _MAX_BYTES:
        raise BadInput("config file is larger than 1 MiB", path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise BadInput(f"not a valid TOML file: {err}", path) from None


def is_option(param: Any) -> bool:
    return getattr(param, "param_type_name", "") == "option"


def flag_options(command: Any) -> dict[str, Any]:
    """The options a file may set, by every spelling of their long flag (and param name)."""
    out: dict[str, Any] = {}
    for param in command.params:
        if not is_option(param) or param.name in NOT_IN_FILES or "--json" in param.opts:
            continue
        for opt in param.opts:
            if opt.startswith("--"):
                out[opt[2:]] = param
                out[opt[2:].replace("-", "_")] = param
        out[str(param.name)] = param
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _word(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError("expected a number or a string")
    return str(value)


def command_line_value(param: Any, value: Any) -> Any:
    """A TOML value as the command line would give it to ``param`` (text), or ValueError.

    The option's own parsing then applies, exactly as for a flag typed by hand.
    """
    if getattr(param, "is_flag", False):
        if not isinstance(value, bool):
            raise ValueError("expected true or false")
        return value
    if param.nargs > 1:  # --size H W
        if not isinstance(value, list) or len(value) != param.nargs:
            raise ValueError(f"expected a list of {param.nargs} values")
        return tuple(_word(v) for v in value)
    if param.multiple:
        return tuple(_word(v) for v in (value if isinstance(value, list) else [value]))
    if isinstance(value, list):  # --mean 0.485,0.456,0.406
        if not value or not all(_is_number(v) for v in value):
            raise ValueError("expected a list of numbers")
        return ",".join(repr(float(v)) for v in value)
    return _word(value)


def _setting_text(value: Any) -> str:
    """A ``[set]`` value as the text ``--set KEY=VALUE`` takes."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(_setting_text(v) for v in value)
    return str(value)


def _layers(data: dict, name: str, path: Path) -> tuple[dict, dict]:
    """Flags and ``[set]`` settings: the top level, then the ``[name]`` table over it."""
    section = data.get(name, {})
    if not isinstance(section, dict):
        raise BadInput(f"[{name}] must be a table", path)
    flags: dict[str, Any] = {}
    settings: dict[str, Any] = {}
    for layer in ({k: v for k, v in data.items() if k not in COMMANDS}, section):
        table = layer.get("set", {})
        if not isinstance(table, dict):
            raise BadInput("'set' must be a table of defense settings, e.g. [set]", path)
        settings.update(table)
        flags.update({k: v for k, v in layer.items() if k != "set"})
    return flags, settings


def read_config(ctx: Any, path: Path) -> dict[str, Any]:
    """Check ``path`` against ``ctx.command``'s options; return its ``default_map``.

    The ``[set]`` pairs are kept in ``ctx.meta`` for :func:`config_settings`.

    Raises:
        BadInput: Unknown key (with the closest flag), a value of the wrong type or range.
        MissingDependency: Python 3.10 without ``tomli``.
    """
    name = ctx.info_name or ""
    merged, settings = _layers(_load_toml(path), name, path)
    options = flag_options(ctx.command)
    has_set = any(is_option(p) and p.name == "settings" for p in ctx.command.params)
    default_map: dict[str, Any] = {}
    for key, value in merged.items():
        param = options.get(key)
        if param is None:
            known = sorted({k for k in options if "_" not in k} | ({"set"} if has_set else set()))
            close = difflib.get_close_matches(key.replace("_", "-"), known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise BadInput(
                f"unknown key {key!r} for 'ulrl-edge {name}'{hint} (keys: {', '.join(known)})",
                path,
            )
        try:
            plain = command_line_value(param, value)
            param.process_value(ctx, plain)  # the option's own type, range, choices, callback
        except (ValueError, TypeError, typer.BadParameter) as err:
            why = getattr(err, "message", None) or str(err) or "wrong type"
            raise BadInput(f"key {key!r} = {json.dumps(value)}: {why}", path) from None
        default_map[str(param.name)] = plain
    if settings and not has_set:
        raise BadInput(f"'ulrl-edge {name}' has no defense settings; remove [set]", path)
    ctx.meta[_META] = (path, [f"{k}={_setting_text(v)}" for k, v in settings.items()])
    return default_map


def _config_callback(ctx: typer.Context, param: typer.CallbackParam, value: Path | None):
    if value is None or ctx.resilient_parsing:
        return value
    from ulrl_edge.cli.common import command_boundary
    from ulrl_edge.errors import UlrlEdgeError

    try:
        default_map = read_config(ctx, Path(value))
    except UlrlEdgeError:
        with command_boundary(ctx.info_name or "ulrl-edge"):  # one line, exit 3 (or 5)
            raise
    ctx.default_map = {**(ctx.default_map or {}), **default_map}
    return value


def config_option(default=None):
    """``--config`` as a default value (``config: Optional[Path] = config_option()``), for
    modules whose annotations are strings (``from __future__ import annotations``)."""
    return typer.Option(
        default,
        "--config",
        metavar="FILE.toml",
        is_eager=True,
        callback=_config_callback,
        show_default=False,
        rich_help_panel=PANEL,
        help="Read flags from a TOML file (keys = flag names, \\[set] = defense settings); "
        "flags on the command line win.",
    )


ConfigOpt = Annotated[Optional[Path], config_option(...)]  # noqa: UP045 (read at runtime)
def config_settings(ctx: Any) -> tuple[Path | None, list[str]]:
    """The config file's path and its ``[set]`` pairs (``KEY=VALUE``) for this command."""
    if ctx is None or _META not in ctx.meta:
        return None, []
    path, pairs = ctx.meta[_META]
    return path, list(pairs)
