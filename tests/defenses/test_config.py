"""ULRL presets: the paper preset equals the reference numbers; overrides; resolution."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict

import pytest

from ulrl_edge.defenses.ft import FTConfig
from ulrl_edge.defenses.ulrl import ULRLConfig
from ulrl_edge.errors import BadInput

# Every field of the reference (ULRL.md, config/defense/ulrl/config.yaml, trainer_cls.py).
PAPER = {
    "preset": "paper",
    "seed": 0,
    "batch_size": 128,
    "unlearn_batch_size": 128,
    "augment": True,
    "unlearn_lr": 0.01,
    "unlearn_momentum": 0.9,
    "unlearn_weight_decay": 5e-4,
    "unlearn_milestones": (10, 20),
    "unlearn_gamma": 0.1,
    "unlearn_clip_norm": 20.0,
    "unlearn_epochs": 20,
    "unlearn_stop_acc": 0.20,
    "unlearn_check": "epoch",
    "unlearn_runs": 1,
    "unlearn_agreement": 1,
    "unlearn_mean_outlier": False,  # ours, off (one run)
    "score": "l1",
    "mad_threshold": 3.5,
    "max_suspicious": 2,
    "rank": "z",  # documented deviation; rank="index" is the reference's quirk
    "reinit": True,
    "relearn_lr": 0.005,
    "relearn_lr_adversarial": None,  # ours: the reference has no adversarial term
    "relearn_momentum": 0.9,
    "relearn_weight_decay": 0.0,
    "relearn_clip_norm": None,  # the reference clips unlearning only
    "relearn_epochs": 20,
    "relearn_t_max": 20,
    "relearn_alpha": 0.7,
    "penalty": "cos",
    "relearn_bn": "train",
    "relearn_balanced": False,
    "relearn_acc_after_step": True,
    "relearn_adversarial": 0.0,  # ours, off: the reference has no adversarial term
    "adversarial_eps": 0.1,
    "adversarial_steps": 5,
    "adversarial_loss": "all",
    "adversarial_bank": 0,
    "probe_eps": (),  # ours, off: the reference flags by weight change only
    "probe_steps": 10,
    "probe_min_gap": 0.35,
    "patch_probe": False,  # ours, off
    "patch_adversary": False,  # ours, off
    "warp_probe": False,  # ours, off
    "warp_adversary": False,  # ours, off
    "warp_shift": 1.0,  # ours, unused while the warp probe and adversary are off
    "warp_grid": 4,  # ours, unused while the warp probe and adversary are off
    "relearn_distill": 0.0,  # ours, off
    "distill_classes": "unflagged",  # ours, unused while relearn_distill is 0
    "relearn_anchor": 0.0,  # ours, off
    "unflagged_relearn": "finetune",  # the reference: a plain fine-tune
    "refit_epochs": 0,  # ours, off
    "refit_lr": 0.01,  # ours, unused while refit_epochs is 0
    "refit_class_drop": 0.5,  # ours, unused while refit_epochs is 0
}


def test_paper_preset_is_the_reference_exactly():
    cfg = ULRLConfig.paper()
    assert asdict(cfg) == PAPER
    # Nothing is left to the data: resolving changes no field, whatever the sample count.
    assert asdict(cfg.resolve(500)) == PAPER
    assert asdict(cfg.resolve(37)) == PAPER
    assert asdict(cfg.resolve(480, 10)) == PAPER  # no anchor or warp either


def test_paper_can_be_made_fully_faithful():
    assert ULRLConfig.paper(rank="index").rank == "index"


def test_auto_resolves_from_the_sample_count():
    auto = ULRLConfig.auto()
    assert auto.preset == "auto" and auto.batch_size is None and auto.unlearn_lr is None
    small, large = auto.resolve(300), auto.resolve(50_000)
    assert small.batch_size < large.batch_size <= 128
    assert small.unlearn_batch_size == small.batch_size  # one batch size for both phases
    # Adversarial relearning from 32 images per class (unknown classes: off); paper: never.
    assert auto.relearn_adversarial is None
    assert [auto.resolve(n, 10).relearn_adversarial for n in (80, 319, 320, 480)] == [
        0.0, 0.0, 2.0, 2.0,
    ]  # fmt: skip
    assert auto.resolve(480).relearn_adversarial == 0.0
    assert ULRLConfig.paper().resolve(5000, 10).relearn_adversarial == 0.0
    # Distillation goes with the adversarial term (and a weight given is kept as it is).
    assert [auto.resolve(n, 10).relearn_distill for n in (319, 320)] == [0.0, 10.0]
    assert ULRLConfig.auto(relearn_adversarial=0.0).resolve(480, 10).relearn_distill == 0.0
    assert ULRLConfig.auto(relearn_distill=1.0).resolve(80, 10).relearn_distill == 1.0
    assert ULRLConfig.paper().resolve(5000, 10).relearn_distill == 0.0
    # So does the refit of a lost class's row (it needs the adversarial term).
    assert [auto.resolve(n, 10).refit_epochs for n in (319, 320)] == [0, 20]
    assert ULRLConfig.auto(refit_epochs=5).resolve(80, 10).refit_epochs == 5
    assert (auto.relearn_lr, auto.relearn_lr_adversarial) == (0.005, 0.001)
    # auto relearns against a 0.15 bound, its gradients clipped at 100 (the reference: neither).
    assert (auto.adversarial_eps, auto.relearn_clip_norm) == (0.15, 100.0)
    assert ULRLConfig.auto(relearn_clip_norm=0.0).relearn_clip_norm == 0.0  # 0: no clipping
    with pytest.raises(BadInput, match="relearn_clip_norm"):
        ULRLConfig.auto(relearn_clip_norm=-1.0)
    pinned = ULRLConfig.auto(unlearn_batch_size=64).resolve(480)
    assert (pinned.unlearn_batch_size, pinned.batch_size) == (64, 16)
    assert pinned.unlearn_lr == pytest.approx(0.01 * 64 / 128)  # the rate follows the batch
    assert small.unlearn_lr is not None and small.relearn_t_max == small.relearn_epochs
    assert ULRLConfig() == ULRLConfig()  # frozen, comparable


def test_overrides_change_fields_and_ignore_none():
    cfg = ULRLConfig.paper().with_overrides(max_suspicious=1, seed=7, relearn_epochs=None)
    assert (cfg.max_suspicious, cfg.seed, cfg.relearn_epochs) == (1, 7, 20)
    assert ULRLConfig.paper(unlearn_milestones=[5, 8]).unlearn_milestones == (5, 8)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    "bad",
    [
        {"no_such": 1},
        {"max_suspicious": -1},
        {"penalty": "l2"},
        {"unlearn_agreement": 5},
        {"relearn_lr": 0.0},
        {"rank": "size"},
    ],
)
def test_bad_overrides_are_bad_input(bad):
    with pytest.raises(BadInput):
        ULRLConfig.auto().with_overrides(**bad)


def test_ft_config_overrides():
    assert FTConfig().with_overrides(lr=0.01).lr == 0.01
    with pytest.raises(BadInput):
        FTConfig().with_overrides(alpha=1)
