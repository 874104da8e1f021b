"""What every command shares: output streams, JSON mode and the error boundary.

Results go to stdout, diagnostics to stderr. The library raises
:class:`~ulrl_edge.errors.UlrlEdgeError` subclasses; :func:`command_boundary` is the only place
they become exit codes and one-line messages.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import typer
from rich.console import Console

from ulrl_edge.errors import EXIT_INTERNAL, UlrlEdgeError


@dataclass
class Settings:
    """Global flags, set by the root callback."""

    debug: bool = False
    quiet: bool = False


SETTINGS = Settings()


def stderr_console() -> Console:
    no_color = bool(os.environ.get("NO_COLOR")) or not sys.stderr.isatty()
    return Console(stderr=True, no_color=no_color, highlight=False, soft_wrap=True)


def stdout_console() -> Console:
    no_color = bool(os.environ.get("NO_COLOR")) or not sys.stdout.isatty()
    return Console(no_color=no_color, highlight=False, soft_wrap=True)


def info(message: str) -> None:
    """A diagnostic line on stderr (silenced by ``--quiet``)."""
    if not SETTINGS.quiet:
        stderr_console().print(message)


def emit_json(obj: object) -> None:
    """The one JSON object a ``--json`` command prints on stdout."""
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


@contextmanager
def command_boundary(name: str) -> Iterator[None]:
    """Run a command body; map errors to exit codes and print the closing line.

    Args:
        name: The command name shown in the closing ``PASSED | …`` / ``FAILED | …`` line.
    """
    start = time.perf_counter()
    code = 0
    try:
        yield
    except typer.Exit as stop:
        code = stop.exit_code
        raise
    except UlrlEdgeError as err:
        code = err.exit_code
        if SETTINGS.debug:
            traceback.print_exc()
        sys.stderr.write(f"error: {err.one_line()}\n")
        raise typer.Exit(code) from None
    except KeyboardInterrupt:
        code = 130
        sys.stderr.write("error: interrupted; no partial output was left behind\n")
        raise typer.Exit(code) from None
    except Exception as err:  # a bug: keep it apart from user errors
        code = EXIT_INTERNAL
        if SETTINGS.debug:
            traceback.print_exc()
        first = " ".join(str(err).split())[:300]
        sys.stderr.write(
            f"internal error: {type(err).__name__}: {first} "
            "(rerun with --debug and report the traceback)\n"
        )
        raise typer.Exit(code) from None
    finally:
        if not SETTINGS.quiet:
            verdict = "PASSED" if code == 0 else "FAILED"
            sys.stderr.write(f"{verdict} | {time.perf_counter() - start:.1f}s | {name}\n")
