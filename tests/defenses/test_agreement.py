"""ULRL's unlearning runs: a row is flagged when runs agree on it and their mean Δ does too."""

from __future__ import annotations

import numpy as np
import torch

from ulrl_edge.defenses import ulrl as ulrl_module
from ulrl_edge.defenses.mad import mad_outliers
from ulrl_edge.defenses.ulrl import ULRLConfig, unlearn

QUIET = np.array([1.0, 1.1, 0.9, 1.05, 0.95, 1.0, 1.1, 0.9, 1.0, 1.05])


def _runs(class_2: list[float]):
    """Fake unlearning runs: every row moves alike but row 2, by ``class_2`` per run."""
    deltas = iter(class_2)

    def once(model, data, cfg, seed, progress):
        delta = QUIET.copy()
        delta[2] = next(deltas)
        return {"seed": seed, "epochs_used": 1, "steps": 1, "curve": [],
                "delta": delta.tolist(), "_direction": torch.zeros(10, 4),
                "mad": mad_outliers(delta, threshold=cfg.mad_threshold, max_flagged=None,
                                    rank="z")}  # fmt: skip

    return once


def _flagged(monkeypatch, clean_lab, class_2, **overrides):
    monkeypatch.setattr(ulrl_module, "_unlearn_once", _runs(class_2))
    cfg = ULRLConfig.auto(probe_eps=(), patch_probe=False, warp_probe=False, **overrides)
    return unlearn(clean_lab.model, clean_lab.training_data(), cfg.resolve(300, 10))


def test_two_runs_agreeing_flag_a_row_whose_mean_change_stands_out(monkeypatch, clean_lab):
    found = _flagged(monkeypatch, clean_lab, [1.6, 1.6, 1.0])
    assert found["votes"][2] == 2 and found["flagged"] == [2] and 2 in found["mad"]["candidates"]


def test_two_runs_agreeing_do_not_flag_a_row_the_third_run_left_still(monkeypatch, clean_lab):
    # How clean, well-trained models were flagged: two runs of three pick one of the
    # confusable classes, the mean over the runs does not single it out.
    found = _flagged(monkeypatch, clean_lab, [1.6, 1.6, 0.0])
    assert found["votes"][2] == 2 and 2 not in found["mad"]["candidates"]
    assert found["flagged"] == []
    vote_only = _flagged(monkeypatch, clean_lab, [1.6, 1.6, 0.0], unlearn_mean_outlier=False)
    assert vote_only["flagged"] == [2]
