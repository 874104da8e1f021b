"""The preprocessing flags, declared once for every command that reads images.

A command gets them with the :func:`preprocess_options` decorator: the seven flags appear in
its ``--help`` under "Preprocessing" and reach the function packed as one
``preprocess: PreprocessFlags`` argument::

    @app.command("scan")
    @preprocess_options
    def scan(model: Path, ..., preprocess: PreprocessFlags) -> None:
        spec = preprocess.resolve(input_shape, metadata, model=model)
        images = load_images(src, spec, resize=preprocess.resize)

The ``Annotated`` aliases (``LayoutOpt``, ``SizeOpt``, …) are exported too, for a command
that prefers to declare the flags itself.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

PANEL = "Preprocessing"


class LayoutChoice(str, Enum):
    nchw = "nchw"
    nhwc = "nhwc"


class ChannelsChoice(str, Enum):
    rgb = "rgb"
    bgr = "bgr"
    gray = "gray"


def _numbers(value: str | None) -> str | None:
    """Check ``--mean`` / ``--std``: one number or three, separated by commas."""
    if value is None:
        return None
    parts = [p.strip() for p in value.replace(" ", ",").split(",") if p.strip()]
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        raise typer.BadParameter(f"expected numbers separated by commas, got {value!r}") from None
    if len(numbers) not in (1, 3):
        raise typer.BadParameter(f"expected 1 or 3 numbers, got {len(numbers)}")
    return ",".join(repr(n) for n in numbers)


# Optional[...] rather than "X | None": Typer reads these annotations at runtime on 3.10.
LayoutOpt = Annotated[
    Optional[LayoutChoice],  # noqa: UP045
    typer.Option("--layout", help="Input layout of the model.", rich_help_panel=PANEL),
]
SizeOpt = Annotated[
    Optional[tuple[int, int]],  # noqa: UP045
    typer.Option(
        "--size",
        metavar="H W",
        help="Model input size; also allows resizing images of another size to it.",
        rich_help_panel=PANEL,
    ),
]
ChannelsOpt = Annotated[
    Optional[ChannelsChoice],  # noqa: UP045
    typer.Option("--channels", help="Channel order the model wants.", rich_help_panel=PANEL),
]
MeanOpt = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        "--mean",
        metavar="M[,M,M]",
        callback=_numbers,
        help="Subtracted after scaling: one value or one per channel, comma-separated.",
        rich_help_panel=PANEL,
    ),
]
StdOpt = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        "--std",
        metavar="S[,S,S]",
        callback=_numbers,
        help="Divisor after the mean: one value or one per channel, comma-separated.",
        rich_help_panel=PANEL,
    ),
]
ScaleOpt = Annotated[
    Optional[float],  # noqa: UP045
    typer.Option(
        "--scale", help="Multiplier on [0, 1] pixels (255 for 0–255 models).", rich_help_panel=PANEL
    ),
]
PreprocessFileOpt = Annotated[
    Optional[Path],  # noqa: UP045
    typer.Option(
        "--preprocess",
        metavar="FILE.json",
        help="JSON with layout/size/channels/scale/mean/std (flags win over it).",
        rich_help_panel=PANEL,
    ),
]

_OPTIONS: dict[str, Any] = {
    "layout": LayoutOpt,
    "size": SizeOpt,
    "channels": ChannelsOpt,
    "mean": MeanOpt,
    "std": StdOpt,
    "scale": ScaleOpt,
    "preprocess_file": PreprocessFileOpt,
}


@dataclass(frozen=True)
class PreprocessFlags:
    """The preprocessing flags as given (None: not given).

    Attributes:
        layout: ``nchw`` / ``nhwc``.
        size: (height, width); giving it also allows resizing the images.
        channels: ``rgb`` / ``bgr`` / ``gray``.
        mean: Comma-separated numbers.
        std: Comma-separated numbers.
        scale: Multiplier on [0, 1] pixels.
        preprocess_file: A ``--preprocess`` JSON file.
    """

    layout: str | None = None
    size: tuple[int, int] | None = None
    channels: str | None = None
    mean: str | None = None
    std: str | None = None
    scale: float | None = None
    preprocess_file: Path | None = None

    @property
    def resize(self) -> bool:
        """Whether images of another size may be resized: only when ``--size`` was given."""
        return self.size is not None

    def overrides(self) -> dict[str, Any]:
        """The flags as ``resolve_spec`` overrides (spec field → value or None)."""

        def numbers(text: str | None) -> tuple[float, ...] | None:
            return tuple(float(v) for v in text.split(",")) if text else None

        return {
            "layout": getattr(self.layout, "value", self.layout),
            "size": tuple(self.size) if self.size else None,
            "channels": getattr(self.channels, "value", self.channels),
            "scale": self.scale,
            "mean": numbers(self.mean),
            "std": numbers(self.std),
        }

    def resolve(
        self,
        input_shape: Sequence[Any],
        metadata: Mapping[str, str] | None,
        *,
        model: str | Path | None = None,
    ):
        """The PreprocessSpec for a model input: metadata, then the file, then these flags."""
        from ulrl_edge.data.spec import resolve_spec

        return resolve_spec(
            input_shape,
            metadata,
            file=self.preprocess_file,
            overrides=self.overrides(),
            model=model,
        )


def preprocess_options(func: Callable) -> Callable:
    """Add the preprocessing flags to a Typer command; it receives ``preprocess=PreprocessFlags``.

    The decorated function must have a ``preprocess`` parameter (keyword) and be decorated
    before (below) ``@app.command``.
    """
    signature = inspect.signature(func)
    if "preprocess" not in signature.parameters:
        raise TypeError(f"{func.__name__} needs a 'preprocess' parameter")
    kept = [p for name, p in signature.parameters.items() if name != "preprocess"]
    added = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=ann)
        for name, ann in _OPTIONS.items()
    ]

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        flags = PreprocessFlags(**{name: kwargs.pop(name, None) for name in _OPTIONS})
        return func(*args, preprocess=flags, **kwargs)

    wrapper.__signature__ = signature.replace(parameters=kept + added)  # type: ignore[attr-defined]
    annotations = {
        k: v for k, v in getattr(func, "__annotations__", {}).items() if k != "preprocess"
    }
    wrapper.__annotations__ = {**annotations, **_OPTIONS}
    return wrapper
