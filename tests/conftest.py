"""Shared fixtures: a CLI runner and a deterministic, single-threaded torch."""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile
from dataclasses import dataclass

import pytest
import torch
from hypothesis import settings
from typer.testing import CliRunner

from tests.fixtures.shared_folder import SHARED_FOLDER_ENV

torch.set_num_threads(1)  # CI has 2 cores; tests stay predictable and repeatable

# No deadline for any property (the one place it is set): Hypothesis's 200 ms failed a fast
# property when the shared cores were busy (468 ms once, 0.08 ms on the retry); properties
# are checked here, speed is benchmarked.
settings.register_profile("ulrl-edge", deadline=None)
settings.load_profile("ulrl-edge")


def pytest_configure(config):
    """One folder for the whole run's trained test models and probe answers, shared by the
    xdist workers (they inherit the environment; see tests/fixtures/shared_folder.py). Made
    by the main process, removed when it ends."""
    if hasattr(config, "workerinput") or os.environ.get(SHARED_FOLDER_ENV):
        return
    folder = tempfile.mkdtemp(prefix="ulrl-edge-test-models-")
    os.environ[SHARED_FOLDER_ENV] = folder
    config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))


# The slowest test files, slowest first (CI's two cores, pytest --junitxml), queued before
# the rest: with --dist loadfile a file stays on one worker, and one of these started last
# would keep a core busy long after the other had finished. test_flagged_adversary asks the
# end-to-end test's probes (adversarial_lab); xdist hands each worker two files at the start,
# so queued fourth it ran beside that test and its worker sat waiting for the answers.
SLOWEST_FILES = (
    "tests/defenses/test_patch_probe.py",
    "tests/cli/test_purify.py",
    "tests/defenses/test_ulrl_end_to_end.py",
    "tests/defenses/test_sau.py",
    "tests/defenses/test_anp.py",
    "tests/defenses/test_flagged_adversary.py",
    "tests/defenses/test_determinism.py",
    "tests/hardening/test_faults.py",
    "tests/defenses/test_precision.py",
    "tests/cli/test_ux.py",
)


def pytest_collection_modifyitems(config, items):
    """Queue :data:`SLOWEST_FILES` first (xdist keeps this order with
    --no-loadscope-reorder); the other files keep their collection order."""
    rank = {path: i for i, path in enumerate(SLOWEST_FILES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


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


@pytest.fixture(scope="module")
def remembered_probes():
    """While a module runs, ULRL's probes answer a repeated question from memory.

    Opt in per module (``pytestmark = pytest.mark.usefixtures("remembered_probes")``) where
    tests purify or scan the same model from the same images; see
    ``tests/fixtures/remembered_probes.py``.
    """
    from tests.fixtures.remembered_probes import patch_probes

    with pytest.MonkeyPatch.context() as monkeypatch:
        patch_probes(monkeypatch)
        yield
