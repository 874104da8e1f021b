"""Broken and unsupported model files through inspect, verify and purify."""

from __future__ import annotations

import pytest

from tests.hardening import corpus
from tests.hardening.checks import TINY, run_refused, snapshot

FILE_LEVEL = [c for c in corpus.MODEL_CASES if c.code == 3]
# onnxruntime runs If and Loop, so `verify` measures these models; only the import refuses.
RUNS_IN_ONNXRUNTIME = {"control_if", "control_loop"}


@pytest.fixture
def case_dir(tmp_path):
    data = corpus.good_npz(tmp_path, n=100)
    return tmp_path, data


@pytest.mark.parametrize("case", corpus.MODEL_CASES, ids=lambda c: c.name)
def test_purify_refuses(run_cli, case_dir, case):
    folder, data = case_dir
    model = case.build(folder)
    run_refused(
        run_cli,
        ["purify", model, "-c", data, "-o", folder / "out.onnx", *TINY],
        folder,
        case.code,
        case.message,
    )


@pytest.mark.parametrize("case", corpus.MODEL_CASES, ids=lambda c: c.name)
def test_verify_refuses(run_cli, case_dir, case):
    folder, data = case_dir
    model = case.build(folder)
    if case.name in RUNS_IN_ONNXRUNTIME:
        before = snapshot(folder)
        run_cli(["verify", model, "--data", data, "--json"], expect_exit=0)
        assert snapshot(folder) == before
        return
    run_refused(run_cli, ["verify", model, "--data", data], folder, case.code, case.message)


@pytest.mark.parametrize("case", FILE_LEVEL, ids=lambda c: c.name)
def test_inspect_refuses(run_cli, tmp_path, case):
    model = case.build(tmp_path)
    run_refused(run_cli, ["inspect", model, "--json"], tmp_path, case.code, case.message)


def test_the_corpus_is_large_enough():
    cases = corpus.MODEL_CASES + corpus.IMAGE_CASES + corpus.NPZ_CASES
    assert len(cases) >= 30
    assert len({c.name for c in cases}) == len(cases)


def test_the_good_model_and_data_pass(run_cli, case_dir):
    """The corpus' baseline is accepted: each case's refusal is due to what it breaks."""
    folder, data = case_dir
    model = corpus.good_model(folder)
    run_cli(["verify", model, "--data", data, "--json"], expect_exit=0)
    run_cli(["verify", model, "--data", corpus.good_folder(folder), "--json"], expect_exit=0)
    run_cli(["inspect", model, "--json", "--check"], expect_exit=0)
    out = folder / "out.onnx"
    run_cli(["purify", model, "-c", data, "-o", out, "--force", *TINY], expect_exit=0)
    assert out.is_file()


@pytest.mark.parametrize("command", ["purify", "scan"])
def test_model_without_a_head_is_refused_naming_the_file(run_cli, case_dir, command):
    folder, data = case_dir
    model = corpus.headless(folder)
    args = [command, model, "-c", data, *TINY]
    if command == "purify":
        args += ["-o", folder / "out.onnx"]
    run_refused(
        run_cli, args, folder, 4, r"headless\.onnx: no classifier head found.*stopped at"
    )
