"""The ``ulrl-edge`` Typer application: global flags and command registration."""

from __future__ import annotations

import typer

from ulrl_edge import __version__
from ulrl_edge.cli.common import SETTINGS

app = typer.Typer(
    name="ulrl-edge",
    help="Remove backdoors from vendor ONNX image classifiers (ULRL: unlearn, then relearn).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ulrl-edge {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing on success."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Remove backdoors from vendor ONNX image classifiers (ULRL: unlearn, then relearn).

    Exit codes: 0 ok · 1 a check failed · 2 usage · 3 bad input · 4 unsupported model ·
    5 missing dependency or hardware · 70 internal error.
    """
    SETTINGS.debug = debug
    SETTINGS.quiet = quiet


# Commands register themselves on import; each module is thin and imports torch lazily.
from ulrl_edge.cli import commands as _commands  # noqa: E402,F401
