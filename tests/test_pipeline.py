"""The purify() library API: repeatability and what it records."""

from __future__ import annotations

import numpy as np

from tests.fixtures.backdoor import cached_case
from ulrl_edge.pipeline import DataOptions, purify

# Detection (both probes) is tested elsewhere; here only what purify() records and repeats.
QUICK = {"unlearn_epochs": 2, "relearn_epochs": 2, "patch_probe": False, "probe_eps": ()}


def _clean_npz(tmp_path):
    case = cached_case("badnets:size=3,pos=br")
    images = case.data["clean_train"]
    np.savez(tmp_path / "clean.npz", x=np.round(images.x[:300] * 255).astype(np.uint8),
             y=images.y[:300])
    return case, tmp_path / "clean.npz"


def test_same_seed_gives_byte_identical_onnx(tmp_path):
    case, clean = _clean_npz(tmp_path)
    outs = []
    for name in ("a.onnx", "b.onnx"):
        result = purify(case.onnx_path, DataOptions(clean), tmp_path / name,
                        config_overrides=QUICK, seed=3)
        outs.append(result.output_path.read_bytes())
        assert result.report.seed == 3
    assert outs[0] == outs[1]


def test_different_seed_is_recorded(tmp_path):
    case, clean = _clean_npz(tmp_path)
    result = purify(case.onnx_path, DataOptions(clean), tmp_path / "c.onnx",
                    config_overrides=QUICK, seed=5, report_dir=tmp_path / "rep")
    assert result.report.seed == 5 and result.report.config["seed"] == 5
    assert (tmp_path / "rep" / "report.json").is_file()
    assert not list(tmp_path.glob(".*tmp*")), "temporary files left behind"
