"""Options shared by commands: ``purify``/``scan``'s clean samples, preset, seed, device,
AMP and ``--set``; every command's ``--json`` and ``--quiet``."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

PANEL = "Purification"
IO_PANEL = "Inputs and outputs"


class Preset(str, Enum):
    auto = "auto"
    paper = "paper"


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


CleanOpt = Annotated[
    Path,
    typer.Option(
        "--clean", "-c", help="Clean labelled images: a class-folder tree or an .npz.",
        show_default=False, rich_help_panel=IO_PANEL,
    ),
]
PresetOpt = Annotated[
    Preset,
    typer.Option(
        "--preset",
        help="auto: settings measured to keep accuracy on few samples; "
        "paper: the reference implementation's numbers.",
        rich_help_panel=PANEL,
    ),
]
SeedOpt = Annotated[
    int, typer.Option("--seed", help="Seed for every random choice.", rich_help_panel=PANEL)
]
DeviceOpt = Annotated[
    Device, typer.Option("--device", help="Where to train.", rich_help_panel=PANEL)
]
AmpOpt = Annotated[
    bool,
    typer.Option(
        "--amp/--no-amp", rich_help_panel=PANEL,
        help="Mixed precision on CUDA (bfloat16, or float16 with loss scaling) for ulrl and "
        "ft; no effect on the CPU.",
    ),
]
MaxSuspiciousOpt = Annotated[
    Optional[int],  # noqa: UP045 (Typer reads the annotation at runtime)
    typer.Option(
        "--max-suspicious", min=0, help="Re-initialise at most this many head rows "
        "(default 2).", rich_help_panel=PANEL, show_default=False,
    ),
]
FlipOpt = Annotated[
    bool,
    typer.Option(
        "--flip/--no-flip",
        help="Allow horizontal flips in training augmentation (not for digits, text, signs).",
        rich_help_panel=PANEL,
    ),
]
ReportOpt = Annotated[
    Optional[Path],  # noqa: UP045
    typer.Option(
        "--report", help="Folder for report.json and report.html.", show_default=False,
        rich_help_panel=IO_PANEL,
    ),
]
SetOpt = Annotated[
    Optional[list[str]],  # noqa: UP045
    typer.Option(
        "--set", metavar="KEY=VALUE", show_default=False, rich_help_panel=PANEL,
        help="Override one defense setting (repeatable), e.g. --set relearn_epochs=10; "
        "see --print-config for the names.",
    ),
]
JsonOpt = Annotated[
    bool,
    typer.Option(
        "--json", help="Print one JSON object on stdout (and nothing else there).",
        rich_help_panel=IO_PANEL,
    ),
]


def _quiet(value: bool) -> bool:
    if value:
        from ulrl_edge.cli.common import SETTINGS

        SETTINGS.quiet = True
    return value


def quiet_option(default=False):
    """``--quiet`` for a command, as a default value (``quiet: bool = quiet_option()``), for
    modules whose annotations are strings (``from __future__ import annotations``)."""
    return typer.Option(
        default, "--quiet", "-q", is_eager=True, expose_value=False, callback=_quiet,
        rich_help_panel=IO_PANEL,
        help="Print nothing on success (with --json: only the JSON object); errors still "
        "print. Same as 'ulrl-edge --quiet COMMAND'.",
    )


QuietOpt = Annotated[bool, quiet_option(...)]


def data_options(clean: Path, preprocess, flip: bool):
    """Build :class:`~ulrl_edge.pipeline.DataOptions` from the shared flags."""
    from ulrl_edge.pipeline import DataOptions

    return DataOptions(
        source=clean,
        preprocess_file=preprocess.preprocess_file,
        overrides=preprocess.overrides(),
        resize=preprocess.resize,
        flip=flip,
    )


def config_overrides(method: str, settings: list[str] | None, ctx=None, **flags) -> dict:
    """``method``'s config overrides: the ``--config`` file's ``[set]`` table (read from the
    command's context ``ctx``), then ``--set`` pairs (they win), then the dedicated flags that
    were given."""
    from ulrl_edge.cli.config_file import config_settings
    from ulrl_edge.defenses import get_defense
    from ulrl_edge.errors import BadInput
    from ulrl_edge.settings import parse_overrides

    entry = get_defense(method)
    path, from_file = config_settings(ctx)
    try:
        overrides = parse_overrides(entry.config_cls, from_file)
    except BadInput as err:  # name the file, and say [set] rather than --set
        raise BadInput(f"[set] {str(err).removeprefix('--set').lstrip(': ')}", path) from None
    overrides.update(parse_overrides(entry.config_cls, list(settings or [])))
    names = {f for f in entry.config_cls.__dataclass_fields__}
    overrides.update({k: v for k, v in flags.items() if v is not None and k in names})
    return overrides


def resolved_defense_config(method: str, preset: str, seed: int, overrides: dict) -> dict:
    """The defense config the run will use: preset, then the overrides (JSON-ready)."""
    from dataclasses import asdict

    from ulrl_edge.defenses import get_defense
    from ulrl_edge.stages import make_config

    config = asdict(make_config(get_defense(method), preset, seed, overrides))
    return {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()}


def print_defense_config(ctx, model: Path, method: str, preset: str, seed: int, overrides: dict,
                         preprocess, as_json: bool) -> None:
    """``--print-config`` for purify and scan: flags, defense settings and the preprocessing
    resolved from the model. The clean samples are not read."""
    import json

    from ulrl_edge.cli.print_config import print_resolved
    from ulrl_edge.onnx_io.load import load_model

    defense = resolved_defense_config(method, preset, seed, overrides)
    loaded = load_model(model)
    spec = preprocess.resolve(loaded.inputs[0].shape, loaded.metadata, model=model)
    print_resolved(ctx, model, defense, json.loads(spec.to_json()), as_json=as_json)
