"""The one user-facing exception hierarchy.

Every error a user can cause or fix derives from :class:`UlrlEdgeError` and carries the exit
code the CLI returns for it (see DESIGN.md). Bugs stay plain Python exceptions: the CLI maps
those to :data:`EXIT_INTERNAL` and asks for ``--debug``.
"""

from __future__ import annotations

from pathlib import Path

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
EXIT_BAD_INPUT = 3
EXIT_UNSUPPORTED_MODEL = 4
EXIT_MISSING_DEPENDENCY = 5
EXIT_INTERNAL = 70


class UlrlEdgeError(Exception):
    """Root of every error a user can act on.

    Args:
        message: One line that says what is wrong (and, where useful, what to do).
        path: The file or folder the problem is about; prefixed to the message.
    """

    exit_code = EXIT_INTERNAL

    def __init__(self, message: str, path: str | Path | None = None):
        self.message = message
        self.path = None if path is None else Path(path)
        super().__init__(self.one_line())

    def one_line(self) -> str:
        text = " ".join(str(self.message).split())  # never more than one line
        return f"{self.path}: {text}" if self.path is not None else text


class CheckFailed(UlrlEdgeError):
    """A verification gate, parity check or scan verdict failed; outputs are kept."""

    exit_code = EXIT_CHECK_FAILED


class UsageError(UlrlEdgeError):
    """Options that contradict each other (Click reports its own parse errors)."""

    exit_code = EXIT_USAGE


class BadInput(UlrlEdgeError):
    """A file, folder, spec or path the user gave is unusable."""

    exit_code = EXIT_BAD_INPUT


class UnsupportedModel(UlrlEdgeError):
    """A valid ONNX model that this tool cannot convert or purify (names the op or layer)."""

    exit_code = EXIT_UNSUPPORTED_MODEL


class MissingDependency(UlrlEdgeError):
    """An optional package or hardware (TensorRT, CUDA) is absent; says how to get it."""

    exit_code = EXIT_MISSING_DEPENDENCY
