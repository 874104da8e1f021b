"""Shared fixtures: a CLI runner and a deterministic, single-threaded torch."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

import pytest
import torch
from typer.testing import CliRunner

torch.set_num_threads(1)  # CI has 2 cores; tests stay predictable and repeatable


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


def invoke_cli(args, expect_exit: int | None = 0) -> CliResult:
    """Run ``ulrl-edge ARGS`` in-process and check its exit code (see :func:`run_cli`)."""
    from ulrl_edge.cli.common import SETTINGS
    from ulrl_edge.cli.main import app

    argv = shlex.split(args) if isinstance(args, str) else [str(a) for a in args]
    SETTINGS.debug = SETTINGS.quiet = False
    result = CliRunner().invoke(app, argv, catch_exceptions=False)
    out = CliResult(result.exit_code, result.stdout, result.stderr)
    if expect_exit is not None:
        assert out.exit_code == expect_exit, (
            f"exit {out.exit_code} != {expect_exit}\n"
            f"stdout:\n{out.stdout}\nstderr:\n{out.stderr}"
        )
    return out


@pytest.fixture
def run_cli():
    """Run ``ulrl-edge ARGS`` in-process and check its exit code.

    Usage: ``run_cli("inspect model.onnx --json", expect_exit=0)``; a list of arguments works too.
    """
    return invoke_cli
