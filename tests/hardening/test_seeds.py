"""Different seeds: each run records its seed in the summary, report.json and the ONNX file."""

from __future__ import annotations

import json

import onnx

from tests.hardening import corpus
from tests.hardening.checks import TINY

# Two relearning epochs (the last --set of a key wins), so seeds reach the weights.
TINY_2 = [*TINY, "--set", "relearn_epochs=2"]


def test_each_seed_is_recorded_with_its_results(run_cli, tmp_path):
    model = corpus.good_model(tmp_path)
    data = corpus.good_npz(tmp_path, n=100)
    runs = {}
    for seed in (1, 2):
        out, rep = tmp_path / f"seed{seed}.onnx", tmp_path / f"rep{seed}"
        summary = json.loads(
            run_cli(
                [
                    "purify",
                    model,
                    "-c",
                    data,
                    "-o",
                    out,
                    "--seed",
                    seed,
                    "--report",
                    rep,
                    "--force",
                    "--json",
                    *TINY_2,
                ]
            ).stdout
        )
        report = json.loads((rep / "report.json").read_text())
        stamped = json.loads(
            {p.key: p.value for p in onnx.load(str(out)).metadata_props}["ulrl_edge.run"]
        )
        assert summary["seed"] == report["seed"] == stamped["seed"] == seed
        assert report["output"]["sha256"] == summary["output_sha256"]
        assert stamped["accuracy_after"] == summary["after"]["accuracy"]
        runs[seed] = (summary, out.read_bytes())
    # Different seeds draw different held-out splits and weights: different files.
    assert runs[1][1] != runs[2][1]
