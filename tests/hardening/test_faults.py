"""Interrupts and write failures: no half-written output, a clear message, a clean restart."""

from __future__ import annotations

import errno
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

import pytest

from tests.hardening import corpus
from tests.hardening.checks import NO_PROBES, TINY, assert_one_line_error, snapshot

NO_SPACE = r"cannot write the output \(No space left on device\); nothing was written"
LAUNCH = "from ulrl_edge.cli.main import app; app(prog_name='ulrl-edge')"


@pytest.fixture
def inputs(tmp_path):
    return tmp_path, corpus.good_model(tmp_path), corpus.good_npz(tmp_path, n=100)


def _default_sigint() -> None:
    # A suite started in the background (`cmd &` in a script) inherits SIGINT ignored, and
    # Python then keeps ignoring it in the child; give the child the terminal's default.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _purify_until_relearning(folder, model, data, sig: int) -> tuple[int, str, float]:
    """Run purify in a subprocess, send ``sig`` once relearning has started; return its exit
    code, its stderr and the seconds it took to exit after the signal."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", "NO_COLOR": "1"}
    argv = [
        sys.executable,
        "-c",
        LAUNCH,
        "purify",
        str(model),
        "-c",
        str(data),
        "-o",
        str(folder / "out.onnx"),
        "--set",
        "unlearn_epochs=1",
        "--set",
        "relearn_epochs=100000",
        *NO_PROBES,  # the signal must land in relearning; no need to wait for the probes
    ]
    proc = subprocess.Popen(
        argv, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=folder,
        preexec_fn=_default_sigint,
    )  # fmt: skip
    lines: list[str] = []
    # Never hang the suite; generous, since on a loaded machine (the suite beside other
    # work) the interrupted run took 91 s from start to exit.
    killer = threading.Timer(240, proc.kill)
    killer.start()
    sent = time.perf_counter()
    try:
        for line in proc.stderr:
            lines.append(line)
            if "relearning" in line:
                proc.send_signal(sig)
                sent = time.perf_counter()
                break
        _, rest = proc.communicate(timeout=60)
    finally:
        killer.cancel()
    return proc.returncode, "".join(lines) + rest, time.perf_counter() - sent


@pytest.mark.parametrize(
    ("sig", "code", "message"),
    [
        (signal.SIGINT, 130, r"error: interrupted; no partial output"),
        (signal.SIGTERM, 143, r"error: terminated \(SIGTERM\); no partial output"),
    ],
    ids=["SIGINT", "SIGTERM"],
)
def test_signal_during_relearning(run_cli, inputs, sig, code, message):
    folder, model, data = inputs
    before = snapshot(folder)
    returncode, stderr, after_signal = _purify_until_relearning(folder, model, data, sig)
    assert "relearning" in stderr, stderr
    assert after_signal < 30  # it stops at once, not after relearning's 100,000 epochs
    assert returncode == code, stderr
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and re.search(message, errors[0]), stderr
    assert snapshot(folder) == before  # no output, no .out.onnx.*.tmp, no .ulrl-edge-* folder
    # A clean restart works: no state from the interrupted run is needed or in the way.
    run_cli(["purify", model, "-c", data, "-o", folder / "out.onnx", "--force", *TINY])
    assert (folder / "out.onnx").is_file()


def test_interrupt_during_export_leaves_nothing(run_cli, inputs, monkeypatch):
    from ulrl_edge import stages

    folder, model, data = inputs
    real_export = stages.export
    written = []

    def export_then_interrupt(model_, loaded, path, *args, **kwargs):
        real_export(model_, loaded, path, *args, **kwargs)
        written.append(path)
        raise KeyboardInterrupt

    monkeypatch.setattr(stages, "export", export_then_interrupt)
    before = snapshot(folder)
    result = run_cli(
        ["purify", model, "-c", data, "-o", folder / "out.onnx", *TINY], expect_exit=None
    )
    assert_one_line_error(result, 130, r"interrupted; no partial output was left behind")
    assert written and not written[0].exists()  # the candidate lived in a removed temp folder
    assert snapshot(folder) == before


def test_sigterm_at_the_final_rename_keeps_the_previous_output(run_cli, inputs, monkeypatch):
    from ulrl_edge.cli.common import Terminated

    folder, model, data = inputs
    out = folder / "out.onnx"
    out.write_bytes(b"the previous run's output")
    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):
        if os.fspath(dst) == os.fspath(out):
            raise Terminated
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    before = snapshot(folder)
    result = run_cli(["purify", model, "-c", data, "-o", out, *TINY], expect_exit=None)
    assert_one_line_error(result, 143, r"terminated \(SIGTERM\); no partial output")
    assert snapshot(folder) == before
    assert out.read_bytes() == b"the previous run's output"


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("command", ["purify", "roundtrip"])
def test_full_disk_while_writing(run_cli, inputs, monkeypatch, command):
    folder, model, data = inputs
    monkeypatch.setattr(os, "fsync", _no_space)
    if command == "purify":
        args = ["purify", model, "-c", data, "-o", folder / "out.onnx", *TINY]
    else:
        args = ["roundtrip", model, "-o", folder / "out.onnx"]
    before = snapshot(folder)
    result = run_cli(args, expect_exit=None)
    assert_one_line_error(result, 3, r"out\.onnx: " + NO_SPACE)
    assert snapshot(folder) == before


def test_full_disk_at_the_final_rename(run_cli, inputs, monkeypatch):
    folder, model, data = inputs
    out = folder / "out.onnx"
    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):
        if os.fspath(dst) == os.fspath(out):
            _no_space()
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    before = snapshot(folder)
    result = run_cli(["purify", model, "-c", data, "-o", out, *TINY], expect_exit=None)
    assert_one_line_error(result, 3, r"out\.onnx: " + NO_SPACE)
    assert snapshot(folder) == before


def test_full_disk_for_the_work_folder(run_cli, inputs, monkeypatch):
    folder, model, data = inputs
    monkeypatch.setattr(tempfile, "mkdtemp", _no_space)
    before = snapshot(folder)
    result = run_cli(
        ["purify", model, "-c", data, "-o", folder / "out.onnx", *TINY], expect_exit=None
    )
    assert_one_line_error(result, 3, r"out\.onnx: " + NO_SPACE)
    assert snapshot(folder) == before


def test_write_atomically_on_interrupt_keeps_the_old_file(tmp_path, monkeypatch):
    from ulrl_edge.onnx_io.to_onnx import write_atomically

    out = tmp_path / "out.onnx"
    out.write_bytes(b"old")

    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomically(b"new bytes", out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.onnx"]
    assert out.read_bytes() == b"old"
