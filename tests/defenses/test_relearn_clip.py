"""Relearning's gradient clip: 0 and None both mean none, a clip changes the steps."""

from __future__ import annotations

from dataclasses import replace

import torch

from ulrl_edge.defenses.ulrl import ULRLConfig, relearn


def _relearned(lab, clip):
    # replace(), not with_overrides(): overrides ignore None.
    cfg = replace(ULRLConfig.auto(relearn_epochs=1), relearn_clip_norm=clip)
    model, _ = relearn(lab.model, lab.training_data(), cfg.resolve(len(lab.purify.y), 10), [3])
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_a_zero_clip_is_no_clip_and_a_tight_clip_changes_relearning(clean_lab):
    unclipped, zero = _relearned(clean_lab, None), _relearned(clean_lab, 0.0)
    assert all(torch.equal(unclipped[k], zero[k]) for k in unclipped)
    tight = _relearned(clean_lab, 1e-3)
    assert any(not torch.allclose(unclipped[k], tight[k]) for k in unclipped)
