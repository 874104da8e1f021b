"""Refitting re-initialised head rows with the rest of the network frozen."""

from __future__ import annotations

import copy

import pytest
import torch

from tests.defenses.weights import snapshot
from ulrl_edge.defenses.base import locate_head
from ulrl_edge.defenses.row_refit import lost_rows, refit_rows
from ulrl_edge.defenses.training import BatchStream
from ulrl_edge.defenses.ulrl import ULRLConfig, relearn
from ulrl_edge.errors import BadInput


def test_refit_moves_only_the_given_rows_and_restores_the_model(clean_lab):
    model = copy.deepcopy(clean_lab.model)
    head = locate_head(model)
    before = snapshot(model)
    head_rows = head.rows().detach().clone()
    wanted = {name: p.requires_grad for name, p in model.named_parameters()}
    model.train()
    stream = BatchStream(clean_lab.training_data(), 32, torch.Generator().manual_seed(0))
    curve = refit_rows(model, head, [3, 5], stream, epochs=2, lr=0.05, extra_loss=None)

    assert [row["epoch"] for row in curve] == [1, 2]
    moved = (head.rows().detach() - head_rows).abs().sum(dim=1)
    assert moved[3] > 0 and moved[5] > 0
    assert torch.count_nonzero(moved) == 2  # every other row exactly as it was
    after = snapshot(model)
    head_params = {n for n, p in model.named_parameters() if p is head.weight or p is head.bias}
    for name, value in before.items():  # the body's weights and BatchNorm statistics
        if name not in head_params:
            assert torch.equal(after[name], value), name
    if head.bias is not None:
        changed = torch.nonzero(head.bias_values().detach() != before[_name(model, head.bias)])
        assert set(changed.flatten().tolist()) <= {3, 5}
    assert model.training  # the caller's mode comes back
    assert {n: p.requires_grad for n, p in model.named_parameters()} == wanted


def _name(model, param) -> str:
    return next(n for n, p in model.named_parameters() if p is param)


def test_refit_adds_the_extra_loss(clean_lab):
    def refit(extra):
        model = copy.deepcopy(clean_lab.model)
        stream = BatchStream(clean_lab.training_data(), 32, torch.Generator().manual_seed(0))
        head = locate_head(model)
        refit_rows(model, head, [2], stream, epochs=1, lr=0.05, extra_loss=extra)
        return head.rows().detach()[2].clone()

    plain = refit(None)
    pushed = refit(lambda x, y, logits: 10.0 * logits[:, 2].mean())  # pushes row 2's logit down
    assert not torch.equal(plain, pushed)


def test_refit_settings_are_validated():
    with pytest.raises(BadInput, match="refit_epochs"):
        ULRLConfig.auto(refit_epochs=-1).validate()
    with pytest.raises(BadInput, match="refit_lr"):
        ULRLConfig.auto(refit_lr=0.0).validate()
    with pytest.raises(BadInput, match="refit_class_drop"):
        ULRLConfig.auto(refit_class_drop=1.5).validate()


def test_a_class_is_lost_when_its_accuracy_falls_far_enough(clean_lab):
    lab = clean_lab
    broken = copy.deepcopy(lab.model)
    head = locate_head(broken)
    with torch.no_grad():
        head.bias_values()[4] -= 1e4  # class 4 is never chosen any more
    lost, accuracy = lost_rows(lab.model, broken, [4, 7], lab.holdout, lab.spec, 10, 0.5)
    assert lost == [4]
    assert accuracy["4"]["original"] > 0.8 and accuracy["4"]["relearned"] == 0.0
    assert accuracy["7"]["relearned"] >= accuracy["7"]["original"] - 0.05
    assert lost_rows(lab.model, lab.model, [4], lab.holdout, lab.spec, 10, 0.0)[0] == [4]
    none_of_4 = lab.holdout.subset(lab.holdout.y != 4)
    assert lost_rows(lab.model, broken, [4], none_of_4, lab.spec, 10, 0.5)[0] == []


def test_relearning_refits_only_a_lost_class_and_only_with_the_adversarial_term(backdoored_lab):
    lab, data = backdoored_lab, backdoored_lab.training_data()
    n = len(lab.purify.y)

    def run(adversarial: float, flagged: list[int], drop: float) -> dict:
        cfg = ULRLConfig.auto(relearn_adversarial=adversarial, relearn_epochs=2, refit_epochs=2,
                              refit_class_drop=drop)  # fmt: skip
        return relearn(lab.model, data, cfg.resolve(n, 10), flagged=flagged)[1]["refit"]

    assert run(0.0, [0], 0.0) is None  # without the adversary the backdoor would come back
    assert run(2.0, [], 0.0) is None
    always = run(2.0, [0], 0.0)
    assert always["rows"] == [0] and always["epochs"] == 2 and len(always["curve"]) == 2
    assert always["judged_on"] == "holdout" and set(always["cos"]) == {"0"}
    assert set(always["class_acc"]["0"]) == {"original", "relearned"}
    kept = run(2.0, [0], 1.0)  # only a class that fell from 100% to 0% would qualify
    assert kept["rows"] == [] and kept["epochs"] == 0 and kept["curve"] == []
