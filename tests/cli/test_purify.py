"""purify and scan through the CLI, on really backdoored tiny models."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import onnx
import pytest

from tests.conftest import invoke_cli
from tests.fixtures.backdoor import cached_case
from ulrl_edge import stages
from ulrl_edge.defenses.patch_probe import PATCH_MIN_GAP
from ulrl_edge.onnx_io.to_onnx import WRITTEN_BACK
from ulrl_edge.pipeline import DataOptions

# Scanning and purifying the same model repeats the probes' questions; the first answer
# stands (tests/fixtures/remembered_probes.py).
pytestmark = pytest.mark.usefixtures("remembered_probes")

BADNETS = "badnets:size=3,pos=br"


def _write_npz(path, images, n=None, seed=0):
    index = np.arange(len(images))
    if n is not None:
        index = np.sort(np.random.default_rng(seed).choice(len(images), n, replace=False))
    np.savez(path, x=np.round(images.x[index] * 255).astype(np.uint8), y=images.y[index])
    return path


@pytest.fixture(scope="module")
def badnets_case():
    return cached_case(BADNETS)


@pytest.fixture
def clean_npz(tmp_path, badnets_case):
    return _write_npz(tmp_path / "clean.npz", badnets_case.data["clean_train"], n=300)


def _io(path):
    model = onnx.load(str(path))
    return [
        (v.name, v.type.tensor_type.elem_type,
         [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim])
        for v in list(model.graph.input) + list(model.graph.output)
    ]


@pytest.fixture(scope="module")
def seed0_purified(tmp_path_factory, badnets_case):
    """auto through the CLI on the digits model whose target unlearning misses: one run,
    checked from several sides below."""
    folder = tmp_path_factory.mktemp("seed0")
    clean_npz = _write_npz(folder / "clean.npz", badnets_case.data["clean_train"], n=300)
    out = folder / "purified.onnx"
    before_bytes = badnets_case.onnx_path.read_bytes()
    summary = json.loads(invoke_cli([
        "purify", badnets_case.onnx_path, "--clean", clean_npz, "-o", out, "--force",
        "--trigger", BADNETS, "--target", "0", "--report", folder / "rep", "--json",
    ]).stdout)
    return SimpleNamespace(summary=summary, out=out, report=folder / "rep" / "report.json",
                           clean_npz=clean_npz, before_bytes=before_bytes)


def test_purify_measures_the_file_it_writes_and_keeps_contract(run_cli, badnets_case,
                                                               seed0_purified):
    summary, out, clean_npz = seed0_purified.summary, seed0_purified.out, seed0_purified.clean_npz
    assert summary["before"]["attack_success_rate"] >= 0.9  # a real backdoor
    assert _io(out) == _io(badnets_case.onnx_path)
    assert badnets_case.onnx_path.read_bytes() == seed0_purified.before_bytes

    # The numbers purify reports are those an independent verify of the written file gives.
    report = json.loads(seed0_purified.report.read_text())
    assert report["data"]["n_verify"] == summary["after"]["n"]
    for name, path in (("before", badnets_case.onnx_path), ("after", out)):
        assert 0.0 <= summary[name]["accuracy"] <= 1.0
        verified = json.loads(run_cli([
            "verify", path, "--data", clean_npz, "--trigger", BADNETS, "--target", "0", "--json",
        ]).stdout)
        assert verified["n"] == 300

    assert report["source"]["sha256"] == summary["source_sha256"]
    assert report["output"]["sha256"] == summary["output_sha256"]
    assert report["seed"] == 0 and report["method"] == "ulrl"
    assert report["compute"] == {"device": "cpu", "amp": None}  # AMP is for CUDA only
    run_meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    # ULRL changes weights only: the vendor's graph ships with them, and both records say so.
    assert report["output"]["written_as"] == run_meta["ulrl_edge.export"] == WRITTEN_BACK
    source_ops = [n.op_type for n in onnx.load(str(badnets_case.onnx_path)).graph.node]
    assert [n.op_type for n in onnx.load(str(out)).graph.node] == source_ops
    stamped = json.loads(run_meta["ulrl_edge.run"])
    assert stamped["source_sha256"] == summary["source_sha256"]
    assert stamped["accuracy_after"] == summary["after"]["accuracy"]
    assert stamped["flagged_neurons"] == summary["flagged"]
    assert "ulrl_edge.preprocess" in run_meta


def test_auto_removes_badnets_from_digits_seed0(seed0_purified):
    summary = seed0_purified.summary
    assert 0 in summary["flagged"]  # by the patch probe: unlearning collapses to class 4
    assert summary["after"]["attack_success_rate"] <= 0.10


@pytest.mark.xfail(strict=True, reason="issue 5: with 24 images per class the reset class 0 "
                   "does not recover (held-out drop 11 points); remove this mark when it passes")
def test_auto_keeps_accuracy_on_digits_seed0(seed0_purified):
    summary = seed0_purified.summary
    assert summary["before"]["accuracy"] - summary["after"]["accuracy"] <= 0.03


def _purify_part(path, model_path, clean_npz):
    """The images purify trains on from ``clean_npz`` (loaded and split as purify does, by
    default, seed 0), saved as their own npz: scanning them asks what purifying asked."""
    data = DataOptions(clean_npz)
    _, _, images = stages.load_inputs(model_path, data)
    part, _ = stages.split(images, data.verify_fraction, seed=0)
    np.savez(path, x=np.round(part.x * 255).astype(np.uint8), y=part.y)
    return path


def test_scan_reports_the_mad_rule_it_applied(run_cli, badnets_case, seed0_purified, tmp_path):
    # One scan: its JSON, and --fail-on-suspicious's exit code for what that JSON says. It
    # scans the images seed0_purified purified on, so the probes answer from memory.
    clean = _purify_part(tmp_path / "purify_part.npz", badnets_case.onnx_path,
                         seed0_purified.clean_npz)
    scanned = run_cli(
        ["scan", badnets_case.onnx_path, "--clean", clean, "--json", "--fail-on-suspicious",
         "--no-amp"],  # float32 everywhere: the CPU result, whatever --amp says
        expect_exit=None,
    )
    found = json.loads(scanned.stdout)
    z = [float("inf") if v is None else v for v in found["z"]]
    assert len(z) == len(found["delta"]) == 10
    median = sorted(found["delta"])[4]  # the lower median, as the reference computes it
    for s in found["suspicious"]:
        assert s["found_by"], s
        assert s["runs"] == 3  # auto's unlearning runs
        if "unlearning" in s["found_by"]:
            assert z[s["class"]] > 3.5 and found["delta"][s["class"]] > median
            assert 2 <= s["runs_agreeing"] <= 3  # auto's agreement rule
        if "target probe" in s["found_by"]:
            probe = found["probe"]
            assert probe["flagged"] == s["class"] and max(probe["gap"]) >= probe["min_gap"]
    assert found["suspicious"]  # the probes name the target (unlearning misses it)
    assert scanned.exit_code == 1


def test_scan_names_the_target_and_how_many_runs_agree(run_cli, tmp_path):
    case = cached_case("blend:alpha=0.2,seed=0")  # a model auto's unlearning does catch
    clean = _write_npz(tmp_path / "clean.npz", case.data["clean_train"], n=300)
    # One scan: its text on stdout, its numbers in the report (--json is tested above).
    text = run_cli(["scan", case.onnx_path, "--clean", clean, "--report", tmp_path / "rep"]).stdout
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    first = report["metrics"]["suspicious"][0]
    assert first["class"] == 0 and "unlearning" in first["found_by"]
    assert first["runs"] == 3 and first["runs_agreeing"] in (2, 3)
    assert f"unlearning ({first['runs_agreeing']} of 3 runs)" in text
    # A blend is no patch: the patch probe stays quiet (its other checks: test_patch_probe).
    patch = report["defense"]["patch_probe"]
    assert patch["flagged"] is None and max(patch["gap"]) < PATCH_MIN_GAP / 2


def test_output_equal_to_input_is_refused(run_cli, tmp_path, badnets_case, clean_npz):
    model = tmp_path / "model.onnx"
    model.write_bytes(badnets_case.onnx_path.read_bytes())
    before = model.read_bytes()
    result = run_cli(["purify", model, "--clean", clean_npz, "-o", model], expect_exit=3)
    assert "input model" in result.stderr and str(model) in result.stderr
    assert result.stderr.count("\n") == 2  # the error line and the closing FAILED line
    assert model.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clean.npz", "model.onnx"]


def test_failed_gate_keeps_output_and_exits_1_unless_forced(
    run_cli, tmp_path, badnets_case, clean_npz
):
    # A learning rate far too high wrecks accuracy: the gate must catch it.
    wreck = ["--set", "relearn_lr=5", "--set", "relearn_epochs=2", "--set", "unlearn_epochs=1"]
    out = tmp_path / "bad.onnx"
    args = ["purify", badnets_case.onnx_path, "--clean", clean_npz, "-o", out, *wreck]
    result = run_cli(args, expect_exit=1)
    assert "verification gate failed" in result.stderr and out.exists()
    out.unlink()
    run_cli([*args, "--force"], expect_exit=0)
    assert out.exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--trigger", "nonsense:x=1"], "trigger"),
        (["--set", "relearn_epoch=3"], "relearn_epochs"),
        (["--method", "nope"], "nope"),
    ],
)
def test_bad_options_are_bad_input(run_cli, tmp_path, badnets_case, clean_npz, extra, message):
    out = tmp_path / "out.onnx"
    result = run_cli(
        ["purify", badnets_case.onnx_path, "--clean", clean_npz, "-o", out, "--target", "0",
         *extra],
        expect_exit=3,
    )
    assert message in result.stderr
    assert not out.exists()


def test_tensorrt_format_without_tensorrt_fails_before_any_work(
    run_cli, tmp_path, badnets_case, clean_npz, monkeypatch
):
    import sys

    monkeypatch.setitem(sys.modules, "tensorrt", None)  # importing it fails, as without it
    out = tmp_path / "p.onnx"
    result = run_cli(
        ["purify", badnets_case.onnx_path, "--clean", clean_npz, "-o", out,
         "--format", "tensorrt"],
        expect_exit=5,
    )
    assert "pip install 'ulrl-edge[tensorrt]'" in result.stderr
    assert "relearning" not in result.stderr and not out.exists()
    run_cli(["purify", badnets_case.onnx_path, "--clean", clean_npz, "-o", out, "--fp16"],
            expect_exit=3)
