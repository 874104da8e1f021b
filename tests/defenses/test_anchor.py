"""Relearning's anchor: a pull back towards the original weights, by clean-data importance."""

from __future__ import annotations

import pytest
import torch

from ulrl_edge.defenses.anchor import anchor_to
from ulrl_edge.defenses.base import fresh_copy, locate_head
from ulrl_edge.defenses.ulrl import ULRLConfig, relearn
from ulrl_edge.errors import BadInput


def _named(model):
    return dict(model.named_parameters())


def test_the_anchor_measures_importance_and_leaves_the_model_alone(clean_lab):
    lab = clean_lab
    model = lab.model.train()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    events = []
    anchor = anchor_to(model, lab.training_data(), [], 1e9, progress=events.append)
    assert model.training  # its mode restored
    n = len(lab.purify.y)
    assert events[-1] == {"phase": "anchor", "done": n, "total": n} and len(events) <= 21
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())
    values = torch.cat([v.flatten() for v in anchor.importance.values()])
    assert float(values.mean()) == pytest.approx(1.0, rel=1e-4)  # scaled to mean 1
    assert float(values.min()) >= 0.0 and float(values.max()) > 1.0  # some matter more
    assert set(anchor.importance) == set(_named(model))


def test_the_penalty_is_zero_at_the_origin_and_grows_with_important_moves(clean_lab):
    lab = clean_lab
    anchor = anchor_to(lab.model, lab.training_data(), free_rows=[], max_importance=1e9)
    moved = fresh_copy(lab.model)
    assert float(anchor.penalty(moved)) == 0.0
    with torch.no_grad():
        for p in moved.parameters():
            p.add_(0.01)
    expected = 0.5 * sum(float(v.sum()) for v in anchor.importance.values()) * 0.01**2
    assert float(anchor.penalty(moved)) == pytest.approx(expected, rel=1e-3)


def test_the_flagged_rows_are_free_and_no_importance_exceeds_the_bound(clean_lab):
    lab = clean_lab
    anchor = anchor_to(lab.model, lab.training_data(), free_rows=[3], max_importance=2.0)
    head = locate_head(lab.model)
    names = {id(p): n for n, p in lab.model.named_parameters()}
    rows = head.rows(anchor.importance[names[id(head.weight)]])
    assert float(rows[3].abs().max()) == 0.0 and float(rows[4].max()) > 0.0
    assert float(anchor.importance[names[id(head.bias)]][3]) == 0.0
    assert max(float(v.max()) for v in anchor.importance.values()) == pytest.approx(2.0)


def test_relearning_with_the_anchor_stays_closer_to_the_original(clean_lab):
    lab = clean_lab
    data = lab.training_data()
    reference = anchor_to(lab.model, data, free_rows=[3], max_importance=1e9)
    base = ULRLConfig.auto(relearn_epochs=3, relearn_adversarial=0.0, relearn_distill=0.0)
    distance = {}
    for weight in (0.0, 5.0):
        cfg = base.with_overrides(relearn_anchor=weight).resolve(len(lab.purify.y), 10)
        model, details = relearn(lab.model, data, cfg, flagged=[3])
        distance[weight] = float(reference.penalty(model))
        if weight:
            assert details["anchor"]["weight"] == weight
            # The bound that keeps momentum SGD stable: 1 / (learning rate x weight).
            assert details["anchor"]["max_importance"] <= 1 / (cfg.relearn_lr * weight) + 1e-6
        else:
            assert details["anchor"] is None
    assert distance[5.0] < 0.5 * distance[0.0]


def test_auto_anchors_relearning_while_the_adversarial_term_runs():
    auto, paper = ULRLConfig.auto(), ULRLConfig.paper()
    reference = paper.resolve(480, 10)
    assert (reference.relearn_anchor, reference.relearn_alpha, reference.relearn_bn) == (
        0.0, 0.7, "train",
    )  # fmt: skip
    assert not reference.warp_adversary
    anchored = auto.resolve(480, 10)
    # The statistics are frozen too: the anchor holds weights, not BatchNorm's running means.
    assert (anchored.relearn_anchor, anchored.relearn_alpha, anchored.relearn_bn) == (
        5.0, 0.2, "eval",
    )  # fmt: skip
    assert anchored.warp_adversary  # what keeps a warping trigger out beside the held body
    # Held relearning moves slower (the anchor, a fifth of the rate): twice the steps.
    assert anchored.relearn_epochs == 2 * auto.resolve(480).relearn_epochs == 50
    for held_off in (auto.resolve(100, 10), auto.resolve(480)):  # no adversarial term
        assert (held_off.relearn_anchor, held_off.relearn_alpha, held_off.relearn_bn) == (
            0.0, 0.7, "train",
        )  # fmt: skip
    pinned = ULRLConfig.auto(relearn_anchor=0.0, relearn_alpha=0.5).resolve(480, 10)
    assert (pinned.relearn_anchor, pinned.relearn_alpha, pinned.relearn_bn) == (0.0, 0.5, "train")
    with pytest.raises(BadInput, match="relearn_anchor"):
        ULRLConfig.auto(relearn_anchor=-1.0)


def test_with_nothing_flagged_auto_relearns_held_where_the_adversarial_term_would_run(clean_lab):
    lab = clean_lab
    data = lab.training_data()
    reference = anchor_to(lab.model, data, free_rows=[], max_importance=1e9)
    # 30 images per class: pin the adversarial weight as 40 per class would resolve it.
    base = ULRLConfig.auto(relearn_epochs=3, relearn_adversarial=2.0)
    held = base.resolve(len(lab.purify.y), 10)
    model, details = relearn(lab.model, data, held, flagged=[])
    assert details["anchor"]["weight"] == held.relearn_anchor > 0
    assert details["lr"] == held.relearn_lr_adversarial and details["adversary"] is None
    plain = base.with_overrides(unflagged_relearn="finetune").resolve(len(lab.purify.y), 10)
    tuned, plain_details = relearn(lab.model, data, plain, flagged=[])
    assert plain_details["anchor"] is None and plain_details["lr"] == plain.relearn_lr
    # Held near the original (what it costs in accuracy: the benchmark's clean models).
    assert float(reference.penalty(model)) < 0.5 * float(reference.penalty(tuned))
    assert ULRLConfig.paper().unflagged_relearn == "finetune"
    with pytest.raises(BadInput, match="unflagged_relearn"):
        ULRLConfig.auto(unflagged_relearn="frozen")
