"""The CLI works the same for scripts and people: ``--json``, ``--quiet``, help, progress."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from rich.console import Console

from tests.fixtures.backdoor import cached_case

BADNETS = "badnets:size=3,pos=br"
TINY = [
    "--set", "unlearn_epochs=1", "--set", "relearn_epochs=1",
    "--set", "unlearn_runs=1", "--set", "unlearn_agreement=1", "--set", "patch_probe=false",
    "--set", "probe_eps=",
]
COMMANDS = ("inspect", "roundtrip", "verify", "scan", "purify", "export", "demo")


@pytest.fixture(scope="module")
def case():
    return cached_case(BADNETS)


@pytest.fixture(scope="module")
def clean_npz(tmp_path_factory, case):
    images = case.data["clean_train"]
    index = np.sort(np.random.default_rng(0).choice(len(images), 200, replace=False))
    path = tmp_path_factory.mktemp("data") / "clean.npz"
    np.savez(path, x=np.round(images.x[index] * 255).astype(np.uint8), y=images.y[index])
    return path


def _args(command: str, model: Path, data: Path, out: Path) -> list:
    """A quick successful invocation of each command (tiny model, tiny settings)."""
    return {
        "inspect": ["inspect", model],
        "roundtrip": ["roundtrip", model, "-o", out / "rt.onnx"],
        "verify": ["verify", model, "--data", data, "--trigger", BADNETS, "--target", "0"],
        "scan": ["scan", model, "--clean", data, *TINY],
        "purify": ["purify", model, "--clean", data, "-o", out / "p.onnx", "--report",
                   out / "rep", "--trigger", BADNETS, "--target", "0", "--force", *TINY],
        "export": ["export", model, "-f", "onnx", "-o", out / "ex.onnx"],
    }[command]


@pytest.fixture
def fake_demo(monkeypatch, tmp_path):
    """``run_demo`` replaced by a stub: the real demo trains for a minute or two, and only
    the command's output contract is under test here (test_demo covers the flow)."""
    import ulrl_edge.demo

    metrics = {"n": 1000, "accuracy": 0.87, "attack_success_rate": 0.05}
    report = SimpleNamespace(defense={"flagged": [0]}, gate={"passed": True, "reasons": []})
    purified = SimpleNamespace(
        output_path=tmp_path / "purified.onnx",
        report_path=tmp_path / "report" / "report.json",
        report=report,
    )

    def run_demo(out_dir, *, preset="auto", seed=0, progress=None):
        progress({"phase": "demo", "message": "measuring the backdoored model on the test set"})
        return ulrl_edge.demo.DemoResult(Path(out_dir), metrics, metrics, purified)

    monkeypatch.setattr(ulrl_edge.demo, "run_demo", run_demo)


# --json: exactly one JSON object on stdout for every command.
@pytest.mark.parametrize("command", [c for c in COMMANDS if c != "demo"])
def test_json_is_one_object_on_stdout(run_cli, tmp_path, case, clean_npz, command):
    result = run_cli([*_args(command, case.onnx_path, clean_npz, tmp_path), "--json"])
    assert isinstance(json.loads(result.stdout), dict)  # the whole of stdout is one object
    assert result.stdout.lstrip().startswith("{") and result.stdout.rstrip().endswith("}")
    assert "PASSED" in result.stderr and "PASSED" not in result.stdout


def test_demo_json_and_quiet(run_cli, tmp_path, fake_demo):
    result = run_cli(["demo", "--out", tmp_path / "demo", "--json"])
    assert json.loads(result.stdout)["flagged"] == [0]
    quiet = run_cli(["demo", "--out", tmp_path / "demo", "--quiet"])
    assert quiet.stdout == "" and quiet.stderr == ""
    human = run_cli(["demo", "--out", tmp_path / "demo"])
    assert "attack success rate" in human.stdout and "5.0%" in human.stdout
    assert "gate failed" not in human.stdout


def test_demo_says_when_the_gate_failed(run_cli, tmp_path, fake_demo):
    import ulrl_edge.demo

    result = ulrl_edge.demo.run_demo(tmp_path, progress=lambda event: None)
    result.purify.report.gate = {"passed": False, "reasons": ["held-out accuracy dropped 0.117"]}
    human = run_cli(["demo", "--out", tmp_path / "demo"])  # still exit 0: the demo ran
    assert "gate failed" in human.stdout and "dropped 0.117" in human.stdout


def test_json_on_failure_prints_no_json(run_cli, tmp_path, case):
    result = run_cli(
        ["purify", case.onnx_path, "--clean", tmp_path / "missing.npz", "-o", tmp_path / "p.onnx",
         "--json"],
        expect_exit=3,
    )
    assert result.stdout == ""
    assert "error: " in result.stderr and "missing.npz" in result.stderr


# --quiet: a successful command prints nothing at all, as a global or a command flag.
@pytest.mark.parametrize(
    ("command", "where"),
    [("inspect", "global"), ("roundtrip", "command"), ("verify", "command"), ("scan", "global"),
     ("purify", "command"), ("export", "global")],
)
def test_quiet_prints_nothing_on_success(run_cli, tmp_path, case, clean_npz, command, where):
    args = _args(command, case.onnx_path, clean_npz, tmp_path)
    result = run_cli(["--quiet", *args] if where == "global" else [*args, "-q"])
    assert result.stdout == "" and result.stderr == ""


def test_quiet_json_prints_only_the_object(run_cli, tmp_path, case, clean_npz):
    result = run_cli(["--quiet", *_args("verify", case.onnx_path, clean_npz, tmp_path), "--json"])
    assert json.loads(result.stdout)["accuracy"] > 0.5 and result.stderr == ""


def test_quiet_still_reports_errors(run_cli, tmp_path):
    result = run_cli(["inspect", tmp_path / "missing.onnx", "--quiet"], expect_exit=3)
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "missing.onnx" in result.stderr


def test_human_output_has_no_colour_codes_off_a_terminal(run_cli, case):
    result = run_cli(["inspect", case.onnx_path, "--no-parity"])
    assert "opset" in result.stdout and "\x1b[" not in result.stdout + result.stderr


def test_no_color_env_turns_colours_off(monkeypatch):
    from ulrl_edge.cli.common import stderr_console, stdout_console

    monkeypatch.setenv("NO_COLOR", "1")
    assert stdout_console().no_color and stderr_console().no_color


# Help, version, completion.
@pytest.mark.parametrize("command", COMMANDS)
def test_help_renders_with_examples_and_panels(run_cli, command):
    result = run_cli([command, "--help"])
    text = result.stdout
    assert f"ulrl-edge {command}" in text
    assert "Examples" in text and text.count(f"ulrl-edge {command} ") >= 2
    assert "Inputs and outputs" in text  # options grouped in panels
    assert "--quiet" in text


def test_root_help_version_and_completion(run_cli, monkeypatch):
    from ulrl_edge import __version__

    # Without this Typer guesses the shell from the parent processes (and finds none when
    # the suite runs in the background); with it, --show-completion takes the shell named.
    monkeypatch.setenv("_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION", "1")

    root = run_cli(["--help"]).stdout
    for command in COMMANDS:
        assert command in root
    assert run_cli(["--version"]).stdout.strip() == f"ulrl-edge {__version__}"
    script = run_cli(["--show-completion", "bash"]).stdout
    assert "_ULRL_EDGE_COMPLETE=complete_bash" in script


def test_shell_completion_completes_commands_and_flags():
    env = {**os.environ, "_ULRL_EDGE_COMPLETE": "complete_bash", "COMP_CWORD": "2",
           "COMP_WORDS": "ulrl-edge purify --pre"}
    code = "from ulrl_edge.cli.main import app; app(prog_name='ulrl-edge')"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=60)
    assert set(done.stdout.split()) == {"--preset", "--preprocess"}


# Progress on stderr.
EVENTS = [
    {"phase": "load", "message": "loading model.onnx"},
    *({"phase": "unlearn", "epoch": e, "epochs": 20, "seed": 0, "loss": 1.5, "acc": 0.3}
      for e in (1, 2)),
    *({"phase": "relearn", "epoch": e, "epochs": 3, "loss": 0.5, "acc": 0.9} for e in (1, 2, 3)),
    {"phase": "verify", "message": "measuring"},
    *({"phase": "verify", "done": d, "total": 100} for d in (64, 100, 64, 100)),
]


def test_progress_bars_on_a_terminal():
    from ulrl_edge.cli.progress import progress_printer

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=140, no_color=True)
    with progress_printer(console) as progress:
        for event in EVENTS:
            progress(event)
    final = buffer.getvalue().rsplit("loading model.onnx", 1)[-1]  # the last redraw
    assert "unlearning (seed 0) (stopped at 2 of 20)" in final
    assert "relearning" in final and "3/3" in final and "ETA" in final
    assert final.count("verifying") == 2 and final.count("100/100") == 2


def test_progress_lines_off_a_terminal():
    from ulrl_edge.cli.progress import progress_printer

    buffer = io.StringIO()
    with progress_printer(Console(file=buffer, force_terminal=False)) as progress:
        for event in EVENTS:
            progress(event)
    lines = buffer.getvalue().splitlines()
    assert lines[0] == "· loading model.onnx"
    assert "  relearning epoch 3/3 loss 0.5 acc 0.9" in lines
    assert lines.count("  verifying 100/100") == 2 and len(lines) == 9
