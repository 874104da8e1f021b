"""Options shared by ``purify`` and ``scan``: clean samples, preset, seed, device."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

PANEL = "Purification"


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
        show_default=False,
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
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed for every random choice.")]
DeviceOpt = Annotated[
    Device, typer.Option("--device", help="Where to train.", rich_help_panel=PANEL)
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
    typer.Option("--report", help="Folder for report.json.", show_default=False),
]
SetOpt = Annotated[
    Optional[list[str]],  # noqa: UP045
    typer.Option(
        "--set", metavar="KEY=VALUE", show_default=False, rich_help_panel=PANEL,
        help="Override one defense setting (repeatable), e.g. --set relearn_epochs=10; "
        "see --print-config for the names.",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]


def data_options(clean: Path, preprocess, flip: bool, verify_fraction: float = 0.2):
    """Build :class:`~ulrl_edge.pipeline.DataOptions` from the shared flags."""
    from ulrl_edge.pipeline import DataOptions

    return DataOptions(
        source=clean,
        preprocess_file=preprocess.preprocess_file,
        overrides=preprocess.overrides(),
        resize=preprocess.resize,
        flip=flip,
        verify_fraction=verify_fraction,
    )


def config_overrides(method: str, settings: list[str] | None, **flags) -> dict:
    """``--set`` pairs for ``method``'s config plus the dedicated flags that were given."""
    from ulrl_edge.defenses import get_defense
    from ulrl_edge.settings import parse_overrides

    entry = get_defense(method)
    overrides = parse_overrides(entry.config_cls, list(settings or []))
    names = {f for f in entry.config_cls.__dataclass_fields__}
    overrides.update({k: v for k, v in flags.items() if v is not None and k in names})
    return overrides
