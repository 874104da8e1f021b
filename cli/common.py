"""What every command shares: output streams, JSON mode and the error boundary.

Results go to stdout, diagnostics to stderr. The library raises
:class:`~ulrl_edge.errors.UlrlEdgeError` subclasses; :func:`command_boundary` is the only place
they become exit codes and one-line messages.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
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


EXIT_SIGINT = 130  # 128 + SIGINT, what shells report for Ctrl-C
EXIT_SIGTERM = 143  # 128 + SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is so that cleanup runs exactly as for Ctrl-C."""


def _raise_terminated(signum, frame) -> None:
    raise Terminated()


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` while a command runs (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def command_boundary(name: str) -> Iterator[None]:
    """Run a command body; map errors to exit codes and print the closing line.

    Args:
        name: The command name shown in the closing ``PASSED | …`` / ``FAILED | …`` line.
    """
    start = time.perf_counter()
    code = 0
    try:
        with _sigterm_as_interrupt():
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
    except KeyboardInterrupt as stop:
        # Outputs are written to a temporary file and renamed, so nothing half-written stays.
        terminated = isinstance(stop, Terminated)
        code = EXIT_SIGTERM if terminated else EXIT_SIGINT
        how = "terminated (SIGTERM)" if terminated else "interrupted"
        sys.stderr.write(f"error: {how}; no partial output was left behind\n")
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
