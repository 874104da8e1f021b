"""ULRL's settings: one frozen dataclass, the ``paper`` and ``auto`` presets, overrides.

``paper`` reproduces the reference implementation (see ``shared/ULRL.md``); ``auto`` is our
default, whose choices were measured on Fashion-MNIST models (see the README of the
benchmarks): unlearning that stops at the first collapsed batch and must agree over three
seeds, one flagged row at most, and enough relearning steps to restore the reset class.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np

from ulrl_edge.config import CLASS_LOST_DROP
from ulrl_edge.defenses.config_tools import apply_overrides, require
from ulrl_edge.defenses.unlearning import AscentSettings

# Optimiser steps auto's relearning aims for: 20 epochs of 128 leave few-sample runs
# (500 images: 80 steps) short of recovering the re-initialised class.
RELEARN_STEPS = 750
# ... and while relearning is held (the anchor, at a fifth of the rate): twice as many.
# Measured with 480 images (25 -> 50 epochs) on both 600-image grids: the target met on
# 15 and 11 of 16 models against 13 and 10 (benchmarks/NOTES_600_held.md).
HELD_RELEARN_STEPS = 1500
# Purify images per class from which auto relearns against the flagged class adversarially.
# Measured on Fashion-MNIST: with 48 per class it cut ASR where the target was flagged
# (Blend 95% -> 5%, SIG 79% -> 1% on the ResNet) for ~2 more points of ACC; with 8 per class
# it cost 4-9 points of ACC (the few images over-fit), so below this auto leaves it off.
ADVERSARIAL_MIN_PER_CLASS = 32
# auto's relearning rate while the adversarial term runs (the reference's 0.005 otherwise).
# Measured with 480 purify images (16-image steps) on the 14 of 16 Fashion-MNIST models
# trained on 54,000 images (ACC 91%) where the target was flagged: 0.005 lost 7.7 points of
# ACC on average, 18-20 on two VGGs; 0.001 lost 4.0 (at most 5.0) at about the same ASR
# (3.0% against 2.8%). On under-trained models (6,000 images, ACC 83%) it lost 0.3 more.
ADVERSARIAL_RELEARN_LR = 0.001

# The target probe's bounds in auto, and the lead its top class needs. Measured with 480
# purify images on the benchmark's Fashion-MNIST models: at 0.1 the robust VGGs showed the
# target, at 0.05 the less robust ResNets did (at 0.1 nearly every class was reachable
# there). Where unlearning missed the target the probe's lead was 0.36-0.82; a clean
# model's top class led by at most 0.15 (6 models), a WaNet model's natural class 8 by 0.31.
PROBE_EPS = (0.05, 0.1)
PROBE_MIN_GAP = 0.35
# Softmax temperature of the relearning distillation term (``relearn_distill``).
DISTILL_TEMPERATURE = 2.0
# auto's weights of the adversarial and the distillation terms when the adversarial term runs.
# Measured with 480 purify images on the 32 Fashion-MNIST models of both grids (benchmark
# variant ``ulrl-auto-kdm``, README of the benchmarks): keeping the relearned model's answers
# among the unflagged classes close to the original's gave back accuracy the reset and the
# adversarial term cost, and the doubled adversarial term kept the backdoor out. With the
# 0.15 bound the distillation weighs 10 instead of 5: mean ACC drop 1.18 -> 1.07 (54k) and
# 1.13 -> 0.87 (6k) at the same ASR, the target met on 16 and 14 of 16 models against 16
# and 12 (benchmarks/NOTES_600_clip.md, NOTES_600_clip_6k.md).
ADVERSARIAL_WEIGHT = 2.0
DISTILL_WEIGHT = 10.0
# auto's refit of a re-initialised row after relearning (``refit_epochs``), and how much of
# its class's accuracy relearning must have lost for it to run. Measured on the bundled
# sample (19,000 parameters, 480 purify images): relearning kept 2% of T-shirts (the reset
# class); 20 epochs of refit brought them to 77% and the test ACC from 80.6% to 86.5% (87.3%
# before purification) at 2.9% ASR. On two well-trained Fashion-MNIST models, whose reset
# class had lost 11-12 points, it gained 3-5 there, lost as much on shirt and dress, and
# raised ASR by 0.5-1.2 points: so it waits for a class that is all but lost.
REFIT_EPOCHS = 20
# auto's anchor and cosine-penalty weight while the adversarial term runs (with BatchNorm
# statistics frozen, and the warp adversary beside the perturbations). Measured with 480
# purify images on the 16 Fashion-MNIST models trained on 54,000 images
# (benchmarks/NOTES_600_retrained.md): the reset row relearned beside a body held near
# the original leaves the other classes' accuracy alone (Blend VGG: drop 2.9 -> 1.7); the
# warps keep WaNet out (the anchor without them: ASR 13-98%); and on a BatchNorm ResNet the
# anchor only works with the statistics frozen (they are not weights it can hold).
ANCHOR_WEIGHT = 5.0
ANCHORED_ALPHA = 0.2
REFERENCE_ALPHA = 0.7
# auto's adversarial perturbation bound (pixel units) and relearning's gradient-norm clip.
# Measured with 480 purify images on both 600-image grids (benchmarks/NOTES_600_clip.md):
# SIG's and Blend's triggers move pixels by up to 0.16-0.2, and at 0.1 three 6,000-image
# VGGs kept 5.4-7.6% ASR (0.15: 3.9-4.9%); the target met on 16 and 12 of 16 models against
# 15 and 11 (distillation at 5). Unclipped, the larger bound blew one WaNet ResNet up in its
# first relearning epoch (an overflow, then chance accuracy); a clip at 20 saved it but took
# the VGGs' gain away, one at 100 kept both.
AUTO_ADVERSARIAL_EPS = 0.15
AUTO_RELEARN_CLIP_NORM = 100.0

Penalty = Literal["cos", "cos2", "abs_cos", "ascent"]


@dataclass(frozen=True)
class ULRLConfig:
    """Every setting of ULRL. Build it with :meth:`paper` or :meth:`auto`, then adjust with
    :meth:`with_overrides`. ``None`` means "chosen from the data" (see :meth:`resolve`).

    Attributes:
        preset: Name of the preset this came from (``paper``, ``auto``), for the report.
        seed: Seeds shuffling, augmentation and the re-initialisation.
        batch_size: Images per relearning step (None: from the number of samples).
        unlearn_batch_size: Images per unlearning step (None: the same as ``batch_size``).
            Measured on Fashion-MNIST with 480 purify images (30 models): 16-image steps
            flagged the right class in 22, 64-image steps with 5 runs (3 must agree) in
            29; but on the digits test models (300 images) 64-image steps flagged a clean
            model's natural collapse class, so auto keeps one batch size for both phases.
        augment: Random crop with padding, and flips where the data allows them.
        unlearn_lr: Gradient-ascent learning rate (None: auto).
        unlearn_momentum: SGD momentum while unlearning.
        unlearn_weight_decay: SGD weight decay while unlearning.
        unlearn_milestones: Epochs at which MultiStepLR multiplies the rate by ``unlearn_gamma``.
        unlearn_gamma: MultiStepLR factor.
        unlearn_clip_norm: Gradient L2-norm clip (None: no clipping).
        unlearn_epochs: Most unlearning epochs.
        unlearn_stop_acc: Stop once training accuracy falls to this or lower.
        unlearn_check: Test the stop rule at each epoch's end (reference) or after each step.
        unlearn_runs: Independent unlearning runs (seeds ``seed``, ``seed + 1``, ...).
        unlearn_agreement: A row is flagged only if at least this many runs flag it.
        unlearn_mean_outlier: With several runs, a row they agree on is flagged only if it
            is also an outlier of Δ averaged over the runs (the same MAD test). On clean
            well-trained models single runs each found 2-3 outliers among the confusable
            classes and two of three runs agreed on one (mean z 2.5-2.9); backdoor targets
            that unlearning found stood at mean z 3.6-21.
        score: Δ_k as the L1 change of row k (``l1``), or divided by row k's L1 norm
            (``relative``).
        mad_threshold: Robust z above which a row is an outlier.
        max_suspicious: Keep at most this many flagged rows.
        rank: Keep the rows with the largest z (``z``), or the first by index (reference).
        reinit: Re-initialise the flagged rows before relearning.
        relearn_lr: Fine-tuning learning rate.
        relearn_lr_adversarial: The learning rate instead while the adversarial term runs
            (a row flagged and ``relearn_adversarial`` > 0; None: ``relearn_lr``).
        relearn_momentum: SGD momentum while relearning.
        relearn_weight_decay: SGD weight decay while relearning.
        relearn_clip_norm: Gradient L2-norm clip while relearning (None, the reference's,
            or 0: no clipping; ``auto``: :data:`AUTO_RELEARN_CLIP_NORM`).
        relearn_epochs: Fine-tuning epochs (None: enough for about
            :data:`RELEARN_STEPS` optimiser steps, or :data:`HELD_RELEARN_STEPS` with the
            anchor, 20 to 100 epochs).
        relearn_t_max: Cosine-annealing period in epochs (None: ``relearn_epochs``).
        relearn_alpha: Weight of the penalty on the flagged rows. None (``auto``):
            :data:`ANCHORED_ALPHA` with the anchor (``relearn_anchor``), else the
            reference's 0.7: with the body held, 0.7 keeps the reset row off the features
            its class still uses (a digits model lost that class).
        penalty: ``cos`` (reference: pushes towards anti-alignment), ``cos2`` or ``abs_cos``
            (both push towards orthogonality; measured to leave ASR at 10-45 %), or
            ``ascent`` (cos against the row's change during unlearning instead of its old
            value; experimental).
        relearn_bn: ``train`` updates BatchNorm statistics (reference); ``eval`` freezes them.
            None (``auto``): ``eval`` with the anchor, else ``train``.
        relearn_balanced: Draw relearning batches class-balanced.
        relearn_acc_after_step: Count relearning accuracy with a second train-mode forward
            after each step, as the reference does (it updates BatchNorm statistics twice).
        relearn_adversarial: Weight of the cross-entropy on relearning batches pushed
            towards the flagged class (the first, if several) by a universal perturbation
            (0: off, the reference; see ``flagged_adversary``; None:
            :data:`ADVERSARIAL_WEIGHT` from :data:`ADVERSARIAL_MIN_PER_CLASS` purify images
            per class, else 0).
        adversarial_eps: The perturbation's L∞ bound in [0, 1] pixel units (``auto``:
            :data:`AUTO_ADVERSARIAL_EPS`).
        adversarial_steps: Signed-gradient steps that craft each batch's perturbation.
        adversarial_loss: ``all``: cross-entropy on every perturbed (or patched) image;
            ``fooled``: only on those the attack sends to the flagged class (summed over
            them, divided by the batch size), leaving the others' clean decisions alone.
        adversarial_bank: 0: craft a new perturbation for every relearning batch against the
            model being relearned; N > 0: craft N perturbations once, on the backdoored
            model before its rows are reset, and give each batch one of them (L∞
            perturbations only: pasted patches, see ``patch_adversary``, are always
            crafted per batch).
        probe_eps: L∞ bounds (pixel units) of the target probe run after unlearning (empty:
            off, the reference). A class that a universal perturbation reaches far more
            easily than any other is flagged first (see ``target_probe``).
        probe_steps: Signed-gradient steps of each probe perturbation.
        probe_min_gap: How far the top class's reach must exceed the second's.
        patch_probe: Also run the patch probe after unlearning (see ``patch_probe``): a
            class that one small pasted patch reaches far more easily than any other is
            flagged first (patch triggers, which the L∞ probe cannot imitate).
        patch_adversary: When the patch probe flagged the class that relearning aims at,
            the adversarial term pastes a patch crafted towards it (at a place where the
            probe found it) instead of adding an L∞ perturbation.
        warp_probe: Also run the warp probe after unlearning (see ``warp_probe``): a class
            that one small smooth warp (``warp_shift``, ``warp_grid``) reaches far more
            easily than any other is flagged first (warping triggers, which neither the L∞
            probe nor the patch probe imitates). The patch probe's flag, if any, goes first.
        warp_adversary: Where the L∞ perturbation runs, the adversarial term also warps
            each batch along one smooth displacement field crafted towards the flagged
            class (see ``warp_adversary``): a stand-in for warping triggers (WaNet).
        warp_shift: The warp's largest displacement, in pixels.
        warp_grid: The warp's control points per side (upsampled to the image).
        relearn_distill: Weight of a term that keeps the relearned model's predictions on
            the clean batches close to the original model's (KL divergence at temperature
            :data:`DISTILL_TEMPERATURE`; 0: off, the reference). Clean images do not carry
            the trigger, so the original's answers on them are what a few hundred labels
            cannot teach again: how sure to be of each class. It runs only while a class is
            flagged. None: :data:`DISTILL_WEIGHT` when the adversarial term runs, else 0.
        distill_classes: ``unflagged``: the term compares only the unflagged classes' logits
            (softmax over them), so the original's leaning towards a flagged class, which
            is where the backdoor shows on clean images, is not taught back; ``own_images``:
            the same, except on images labelled as a flagged class, where every class is
            compared (those carry no trigger, and the original's confidence in their own
            class is what the reset row loses; measured on two 54,000-image Fashion-MNIST
            models against ``unflagged``: ACC 0.887 / 0.876 against 0.884 / 0.875, ASR 0.7%
            / 4.7% against 0.4% / 2.4%: the reset class came back, at the cost of the class
            it is confused with, so it stays opt-in); ``all``: every class (what the first
            measured variants did).
        relearn_anchor: Weight of a pull back towards the original weights, each weight's
            pull scaled by its importance to the clean images (see ``anchor``; 0: off, the
            reference). It runs while a class is flagged (with nothing flagged, see
            ``unflagged_relearn``). None (``auto``):
            :data:`ANCHOR_WEIGHT` while the adversarial term runs, else 0.
        unflagged_relearn: With nothing flagged, relearning is a plain fine-tune at
            ``relearn_lr`` (``finetune``, the reference) or, where the adversarial term
            would have run, is held like it (``anchored``: the anchor at
            ``relearn_lr_adversarial``). The plain fine-tune cost clean models 1-2 points
            (Fashion-MNIST, 480 images).
        refit_epochs: After relearning, epochs that train the re-initialised rows alone
            (weights and biases; every other weight and the BatchNorm statistics frozen) on
            cross-entropy plus the adversarial term (see ``row_refit``; 0: off, the
            reference). It runs only with the adversarial term, which keeps the backdoor
            out (without it the rows learn it back). None: :data:`REFIT_EPOCHS` when the
            adversarial term runs, else 0.
        refit_lr: The refit's SGD learning rate (momentum 0.9, no weight decay).
        refit_class_drop: Refit a reset row only if relearning lowered its class's accuracy
            on the held-out images (the purify images when there are none) by at least this
            much from the original model's (0: always).
    """

    preset: str = "custom"
    seed: int = 0
    batch_size: int | None = 128
    unlearn_batch_size: int | None = 128
    augment: bool = True
    unlearn_lr: float | None = 0.01
    unlearn_momentum: float = 0.9
    unlearn_weight_decay: float = 5e-4
    unlearn_milestones: tuple[int, ...] = (10, 20)
    unlearn_gamma: float = 0.1
    unlearn_clip_norm: float | None = 20.0
    unlearn_epochs: int = 20
    unlearn_stop_acc: float = 0.20
    unlearn_check: Literal["epoch", "step"] = "epoch"
    unlearn_runs: int = 1
    unlearn_agreement: int = 1
    unlearn_mean_outlier: bool = False
    score: Literal["l1", "relative"] = "l1"
    mad_threshold: float = 3.5
    max_suspicious: int = 2
    rank: Literal["z", "index"] = "z"
    reinit: bool = True
    relearn_lr: float = 0.005
    relearn_lr_adversarial: float | None = None
    relearn_momentum: float = 0.9
    relearn_weight_decay: float = 0.0
    relearn_clip_norm: float | None = None
    relearn_epochs: int | None = 20
    relearn_t_max: int | None = None
    relearn_alpha: float | None = REFERENCE_ALPHA
    penalty: Penalty = "cos"
    relearn_bn: Literal["train", "eval"] | None = "train"
    relearn_balanced: bool = False
    relearn_acc_after_step: bool = False
    relearn_adversarial: float | None = 0.0
    adversarial_eps: float = 0.1
    adversarial_steps: int = 5
    adversarial_loss: Literal["all", "fooled"] = "all"
    adversarial_bank: int = 0
    probe_eps: tuple[float, ...] = ()
    probe_steps: int = 10
    probe_min_gap: float = PROBE_MIN_GAP
    patch_probe: bool = False
    patch_adversary: bool = False
    warp_probe: bool = False
    warp_adversary: bool = False
    warp_shift: float = 1.0
    warp_grid: int = 4
    relearn_distill: float | None = 0.0
    distill_classes: Literal["all", "unflagged", "own_images"] = "unflagged"
    relearn_anchor: float | None = 0.0
    unflagged_relearn: Literal["finetune", "anchored"] = "finetune"
    refit_epochs: int | None = 0
    refit_lr: float = 0.01
    refit_class_drop: float = CLASS_LOST_DROP

    @classmethod
    def paper(cls, **overrides: Any) -> ULRLConfig:
        """The reference implementation's CIFAR-10 defaults (ULRL.md), ranked by z."""
        base = cls(preset="paper", relearn_t_max=20, relearn_acc_after_step=True)
        return base.with_overrides(**overrides)

    @classmethod
    def auto(cls, **overrides: Any) -> ULRLConfig:
        """Our default, for a few hundred clean samples (measured on Fashion-MNIST).

        Differences from :meth:`paper`, each for a measured failure of the reference: batch
        size and unlearning rate scale with the sample count (>= ~16 steps an epoch); the
        stop rule is checked after every step (the reference overshoots the collapse by a
        whole epoch, and Δ then marks the class it collapsed to); three unlearning runs must
        agree (2 of 3), and so must the mean of their Δ, and only the top row is kept (a
        falsely flagged row costs a whole class); relearning runs ~750 steps,
        class-balanced, so that the reset class recovers; with enough images per class it
        also relearns against perturbations aimed at the flagged class (resetting the row
        alone let the backdoor come back), at a fifth of the learning rate (the full rate
        wrecked some well-trained models) while its answers among the other classes stay
        close to the original's (distillation); a universal-perturbation probe adds the
        target where unlearning missed it, a patch probe a patch trigger's target, which
        relearning then meets with pasted patches instead of small perturbations (BadNets on
        well-trained models), and a warp probe a warping trigger's (WaNet on well-trained
        VGGs, where unlearning flagged a wrong class); a reset class that relearning all but
        lost gets its row refitted alone, against the same adversary (the bundled sample's
        T-shirts: 2% → 77%). Where perturbations are the adversary, smooth warps towards the
        class join them (warping triggers); and while the adversarial term runs, relearning
        holds the weights the clean images use near their original values (the anchor), with
        BatchNorm statistics frozen and the cosine penalty at 0.2, so that the other classes
        keep their accuracy (the warps keep WaNet out), for twice the steps (held, the reset
        class recovers slower). Its perturbations reach 0.15 (Blend's and SIG's triggers
        move pixels further than 0.1), and relearning's gradients are clipped at 100 (that
        bound once overflowed a model's first epoch). The penalty's kind stays the
        reference's: orthogonality penalties left the backdoor in.
        """
        base = cls(
            preset="auto",
            batch_size=None,
            unlearn_batch_size=None,
            unlearn_lr=None,
            unlearn_check="step",
            unlearn_runs=3,
            unlearn_agreement=2,
            unlearn_mean_outlier=True,
            max_suspicious=1,
            relearn_epochs=None,
            relearn_balanced=True,
            relearn_adversarial=None,
            relearn_distill=None,
            refit_epochs=None,
            relearn_lr_adversarial=ADVERSARIAL_RELEARN_LR,
            adversarial_eps=AUTO_ADVERSARIAL_EPS,
            relearn_clip_norm=AUTO_RELEARN_CLIP_NORM,
            probe_eps=PROBE_EPS,
            patch_probe=True,
            patch_adversary=True,
            warp_probe=True,
            warp_adversary=True,
            relearn_anchor=None,
            unflagged_relearn="anchored",
            relearn_alpha=None,
            relearn_bn=None,
        )
        return base.with_overrides(**overrides)

    def with_overrides(self, **overrides: Any) -> ULRLConfig:
        """A copy with the given fields changed (None values ignored).

        Raises:
            BadInput: For a field that does not exist or a value out of range.
        """
        return apply_overrides(self, "ULRL", overrides)

    def validate(self) -> None:
        """Raise BadInput for settings that cannot run."""
        checks = [
            (self.batch_size is None or self.batch_size >= 1, "batch_size must be >= 1"),
            (
                self.unlearn_batch_size is None or self.unlearn_batch_size >= 1,
                "unlearn_batch_size must be >= 1",
            ),
            (self.unlearn_epochs >= 0, "unlearn_epochs must be >= 0"),
            (self.relearn_epochs is None or self.relearn_epochs >= 0, "relearn_epochs >= 0"),
            (self.unlearn_runs >= 1, "unlearn_runs must be >= 1"),
            (1 <= self.unlearn_agreement <= self.unlearn_runs, "unlearn_agreement must be 1..runs"),
            (self.max_suspicious >= 0, "max_suspicious must be >= 0"),
            (self.unlearn_lr is None or self.unlearn_lr > 0, "unlearn_lr must be > 0"),
            (self.relearn_lr > 0, "relearn_lr must be > 0"),
            (
                self.relearn_lr_adversarial is None or self.relearn_lr_adversarial > 0,
                "relearn_lr_adversarial must be > 0",
            ),
            (self.relearn_alpha is None or self.relearn_alpha >= 0, "relearn_alpha must be >= 0"),
            (
                self.relearn_adversarial is None or self.relearn_adversarial >= 0,
                "relearn_adversarial must be >= 0",
            ),
            (self.adversarial_eps > 0, "adversarial_eps must be > 0"),
            (
                self.relearn_clip_norm is None or self.relearn_clip_norm >= 0,
                "relearn_clip_norm must be >= 0 (0: no clipping)",
            ),
            (
                self.relearn_distill is None or self.relearn_distill >= 0,
                "relearn_distill must be >= 0",
            ),
            (
                self.distill_classes in ("all", "unflagged", "own_images"),
                "distill_classes must be 'all', 'unflagged' or 'own_images'",
            ),
            (
                self.relearn_anchor is None or self.relearn_anchor >= 0,
                "relearn_anchor must be >= 0",
            ),
            (self.refit_epochs is None or self.refit_epochs >= 0, "refit_epochs must be >= 0"),
            (self.refit_lr > 0, "refit_lr must be > 0"),
            (0 <= self.refit_class_drop <= 1, "refit_class_drop must be in [0, 1]"),
            (self.adversarial_steps >= 1, "adversarial_steps must be >= 1"),
            (self.warp_shift > 0, "warp_shift must be > 0"),
            (self.warp_grid >= 2, "warp_grid must be >= 2"),
            (self.adversarial_bank >= 0, "adversarial_bank must be >= 0"),
            (self.adversarial_loss in ("all", "fooled"), "adversarial_loss must be all or fooled"),
            (
                self.unflagged_relearn in ("finetune", "anchored"),
                "unflagged_relearn must be finetune or anchored",
            ),
            (all(0 < e <= 1 for e in self.probe_eps), "probe_eps must be in (0, 1]"),
            (self.probe_steps >= 1, "probe_steps must be >= 1"),
            (0 <= self.probe_min_gap <= 1, "probe_min_gap must be in [0, 1]"),
            (
                self.penalty in ("cos", "cos2", "abs_cos", "ascent"),
                f"unknown penalty {self.penalty!r}",
            ),
            (self.rank in ("z", "index"), f"rank must be 'z' or 'index', not {self.rank!r}"),
            (self.score in ("l1", "relative"), "score must be 'l1' or 'relative'"),
            (self.unlearn_check in ("epoch", "step"), "unlearn_check must be 'epoch' or 'step'"),
            (
                self.relearn_bn in (None, "train", "eval"),
                "relearn_bn must be 'train' or 'eval'",
            ),
        ]
        require("ULRL", checks)

    def ascent(self) -> AscentSettings:
        """The unlearning-loop settings of a resolved config."""
        return AscentSettings(
            batch_size=int(self.unlearn_batch_size),
            augment=self.augment,
            lr=float(self.unlearn_lr),
            momentum=self.unlearn_momentum,
            weight_decay=self.unlearn_weight_decay,
            milestones=self.unlearn_milestones,
            gamma=self.unlearn_gamma,
            clip_norm=self.unlearn_clip_norm,
            epochs=self.unlearn_epochs,
            stop_acc=self.unlearn_stop_acc,
            check=self.unlearn_check,
        )

    def resolve(self, num_samples: int, num_classes: int | None = None) -> ULRLConfig:
        """Fill the settings left to the data (None) for ``num_samples`` clean images of
        ``num_classes`` classes (unknown: adversarial relearning stays off)."""
        n = max(num_samples, 1)
        batch = self.batch_size
        if batch is None:  # at least ~16 steps an epoch, never below 16 images a step
            batch = int(min(128, max(16, 2 ** int(np.log2(n / 16)))))
        unlearn_batch = self.unlearn_batch_size if self.unlearn_batch_size is not None else batch
        lr = self.unlearn_lr if self.unlearn_lr is not None else 0.01 * unlearn_batch / 128
        adversarial = self.relearn_adversarial
        if adversarial is None:
            per_class = num_samples / num_classes if num_classes else 0.0
            adversarial = ADVERSARIAL_WEIGHT if per_class >= ADVERSARIAL_MIN_PER_CLASS else 0.0
        distill = self.relearn_distill
        if distill is None:
            distill = DISTILL_WEIGHT if adversarial > 0 else 0.0
        refit = self.refit_epochs
        if refit is None:
            refit = REFIT_EPOCHS if adversarial > 0 else 0
        anchor = self.relearn_anchor
        if anchor is None:
            anchor = ANCHOR_WEIGHT if adversarial > 0 else 0.0
        alpha = self.relearn_alpha
        if alpha is None:
            alpha = ANCHORED_ALPHA if anchor > 0 else REFERENCE_ALPHA
        batchnorm = self.relearn_bn
        if batchnorm is None:  # the anchor holds weights, not the BatchNorm statistics
            batchnorm = "eval" if anchor > 0 else "train"
        epochs = self.relearn_epochs
        if epochs is None:
            steps_per_epoch = -(-n // batch)
            steps = HELD_RELEARN_STEPS if anchor > 0 else RELEARN_STEPS
            epochs = int(min(100, max(20, -(-steps // steps_per_epoch))))
        t_max = self.relearn_t_max if self.relearn_t_max is not None else epochs
        return replace(
            self,
            relearn_anchor=anchor,
            relearn_alpha=alpha,
            relearn_bn=batchnorm,
            refit_epochs=refit,
            batch_size=batch,
            unlearn_batch_size=unlearn_batch,
            unlearn_lr=lr,
            relearn_epochs=epochs,
            relearn_t_max=t_max,
            relearn_adversarial=adversarial,
            relearn_distill=distill,
        )
