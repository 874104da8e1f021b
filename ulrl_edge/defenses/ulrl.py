"""ULRL: unlearn to find the backdoor's output neurons, then relearn without them.

Phase 1 runs gradient ascent on the clean samples, measures how far each row of the head
moved (Δ_k) and flags the rows that are outliers by median absolute deviation (``auto``
also runs :mod:`.target_probe`, :mod:`.warp_probe` and :mod:`.patch_probe` and puts a class
they find first). Phase 2 reloads the original weights, re-initialises the flagged rows and
fine-tunes the whole network with a penalty that keeps those rows away from their old
direction. See ``shared/ULRL.md`` for the reference numbers that :meth:`ULRLConfig.paper`
reproduces.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

import numpy as np
import torch
from torch import nn

from ulrl_edge.defenses.anchor import anchor_to
from ulrl_edge.defenses.base import (
    DefenseResult,
    Progress,
    TrainingData,
    fresh_copy,
    locate_head,
    model_device,
    notify,
    seed_everything,
)
from ulrl_edge.defenses.flagged_adversary import (
    clean_inputs,
    grad_chunk,
    model_space_eps,
    paste,
    patch_mask,
    patch_towards_class,
    perturbation_bank,
    towards_class,
)
from ulrl_edge.defenses.mad import mad_outliers
from ulrl_edge.defenses.patch_probe import PatchProbeResult, probe_patch_target
from ulrl_edge.defenses.precision import full_precision
from ulrl_edge.defenses.registry import register_defense
from ulrl_edge.defenses.row_refit import lost_rows, refit_rows
from ulrl_edge.defenses.target_probe import probe_target_class
from ulrl_edge.defenses.training import (
    BatchStream,
    count_batchnorm,
    cross_entropy,
    current_lr,
    freeze_batchnorm,
    train_epoch,
    with_holdout_accuracy,
)
from ulrl_edge.defenses.ulrl_config import (
    DISTILL_TEMPERATURE,
    RELEARN_STEPS,
    Penalty,
    ULRLConfig,
)
from ulrl_edge.defenses.unlearning import gradient_ascent
from ulrl_edge.defenses.warp_adversary import warp, warp_towards_class
from ulrl_edge.defenses.warp_probe import probe_warp_target

__all__ = ["RELEARN_STEPS", "ULRLConfig", "relearn", "ulrl", "unlearn"]


def _penalty(cos: torch.Tensor, kind: Penalty) -> torch.Tensor:
    if kind in ("cos", "ascent"):
        return cos.sum()
    if kind == "cos2":
        return (cos * cos).sum()
    return cos.abs().sum()


def _unlearn_once(
    model0: nn.Module, data: TrainingData, cfg: ULRLConfig, seed: int, progress: Progress | None
) -> dict[str, Any]:
    """One gradient-ascent run; returns Δ per row and the epoch curve."""
    model = fresh_copy(model0)
    head = locate_head(model)
    w0 = head.rows().detach().clone()
    # Always float32: under float16 autocast the loss scaler skips the first ascent steps
    # and the rows' changes lost their order (digits, measured: a wrong class flagged, or
    # the target's z over the runs 7.5 -> 3.2). Unlearning is the short phase.
    with full_precision(model_device(model)):
        curve, steps = gradient_ascent(model, data, cfg.ascent(), seed, progress, {"seed": seed})
    with torch.no_grad():
        change = (head.rows().detach() - w0).abs().sum(dim=1)
        if cfg.score == "relative":
            change = change / w0.abs().sum(dim=1).clamp_min(1e-12)
        direction = torch.nan_to_num(head.rows().detach() - w0, 0.0, 0.0, 0.0).cpu()
    delta = change.double().cpu().numpy()
    if not np.all(np.isfinite(delta)):  # diverged to inf/nan: nothing can be read from it
        delta = np.nan_to_num(delta, nan=0.0, posinf=0.0, neginf=0.0)
    mad = mad_outliers(delta, threshold=cfg.mad_threshold, max_flagged=None, rank="z")
    return {
        "seed": seed,
        "epochs_used": len(curve),
        "steps": steps,
        "curve": curve,
        "delta": [float(v) for v in delta],
        "mad": mad,
        "_direction": direction,
    }


def unlearn(
    model: nn.Module, data: TrainingData, cfg: ULRLConfig, progress: Progress | None = None
) -> dict[str, Any]:
    """Phase 1 over ``cfg.unlearn_runs`` runs: Δ, the MAD test and the flagged rows.

    Returns:
        JSON-ready: ``flagged``, ``delta``, ``mad`` (the test over Δ), ``runs`` (each run's
        curve, Δ and test) and, for several runs, ``votes``.
    """
    found = _unlearn(model, data, cfg, progress)
    found.pop("_direction")
    return found


def _unlearn(
    model: nn.Module, data: TrainingData, cfg: ULRLConfig, progress: Progress | None = None
) -> dict[str, Any]:
    runs = [
        _unlearn_once(model, data, cfg, cfg.seed + r, progress) for r in range(cfg.unlearn_runs)
    ]
    if len(runs) == 1:
        result = runs[0]["mad"]
        mad = mad_outliers(
            result.scores,
            threshold=cfg.mad_threshold,
            max_flagged=cfg.max_suspicious,
            rank=cfg.rank,
        )
        flagged = list(mad.flagged)
        summary = {"delta": list(mad.scores), "mad": mad.to_dict()}
    else:
        votes = np.zeros(len(runs[0]["delta"]), dtype=int)
        zsum = np.zeros_like(votes, dtype=np.float64)
        for run in runs:
            votes[list(run["mad"].candidates)] += 1
            zsum += np.minimum(np.asarray(run["mad"].z), 1e6)
        mean_delta = np.mean([run["delta"] for run in runs], axis=0)
        mad = mad_outliers(mean_delta, threshold=cfg.mad_threshold, max_flagged=None, rank="z")
        agreed = [k for k in range(len(votes)) if votes[k] >= cfg.unlearn_agreement]
        if cfg.unlearn_mean_outlier:
            agreed = [k for k in agreed if k in mad.candidates]
        if cfg.rank == "z":
            agreed.sort(key=lambda k: (-votes[k], -zsum[k], k))
        flagged = agreed[: cfg.max_suspicious]
        summary = {
            "delta": [float(v) for v in mean_delta],
            "mad": mad.to_dict(),
            "votes": votes.tolist(),
        }
    direction = torch.stack([run.pop("_direction") for run in runs]).mean(0)
    for run in runs:
        run["mad"] = run["mad"].to_dict()
    if cfg.probe_eps or cfg.patch_probe or cfg.warp_probe:
        summary["unlearning_flagged"] = list(flagged)
    if cfg.probe_eps:
        probe = probe_target_class(
            model, data, cfg.probe_eps, cfg.probe_steps, cfg.probe_min_gap, cfg.seed, progress
        )
        summary["probe"] = probe.to_dict()
        flagged = _first(probe.flagged, flagged, cfg.max_suspicious)
    if cfg.warp_probe:
        warped = probe_warp_target(
            model, data, seed=cfg.seed, progress=progress, max_shift=cfg.warp_shift,
            grid=cfg.warp_grid,
        )  # fmt: skip
        summary["warp_probe"] = warped.to_dict()
        flagged = _first(warped.flagged, flagged, cfg.max_suspicious)
    if cfg.patch_probe:  # last, so that its flag goes first: relearning pastes patches there
        patch = probe_patch_target(model, data, seed=cfg.seed, progress=progress)
        summary["patch_probe"] = patch.to_dict()
        flagged = _first(patch.flagged, flagged, cfg.max_suspicious)
    return {"flagged": flagged, "runs": runs, **summary, "_direction": direction}


def _first(strong: int | None, flagged: list[int], most: int) -> list[int]:
    """Strong evidence (a probe's flag) goes first; the other flags stay behind it."""
    if strong is None:
        return flagged
    return [strong, *[k for k in flagged if k != strong]][:most]


def _patch_sites(found: dict[str, Any], data: TrainingData) -> list[tuple[int, int, int]]:
    """(row, column, side) of the squares where the patch probe found the class that
    relearning aims at; empty when it found none or another class."""
    probe = found.get("patch_probe")
    if not probe or found["flagged"][:1] != [probe["flagged"]]:
        return []
    patch = PatchProbeResult(**probe)
    _, h, w, _ = data.images.x.shape
    return [(r, c, patch.size) for r, c in patch.target_origins(h, w)]


def relearn(
    model0: nn.Module,
    data: TrainingData,
    cfg: ULRLConfig,
    flagged: list[int],
    progress: Progress | None = None,
    phase: str = "relearn",
    direction: torch.Tensor | None = None,
    patch_sites: list[tuple[int, int, int]] | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Phase 2: reset the flagged rows of a copy of ``model0`` and fine-tune it.

    Args:
        direction: [classes, features] change of the head during unlearning; the
            ``ascent`` penalty keeps the flagged rows orthogonal to it.
        patch_sites: (row, column, side) of the squares where the patch probe found the
            first flagged class; with ``cfg.patch_adversary`` the adversarial term pastes a
            patch at one of them instead of adding an L∞ perturbation.
    """
    model = fresh_copy(model0)
    # Only while relearning a flagged class: with nothing flagged the original's answers hold
    # whatever backdoor was missed (and fine-tuning at the full rate diverged under the term).
    teacher = fresh_copy(model0).eval() if cfg.relearn_distill > 0 and flagged else None
    head = locate_head(model)
    w_ori = head.rows().detach().clone()[flagged]
    if cfg.penalty == "ascent" and direction is not None:
        w_ori = direction.to(w_ori)[flagged]
    gen = torch.Generator().manual_seed(cfg.seed)
    adversarial_on = bool(flagged) and cfg.relearn_adversarial > 0
    masks = []
    if adversarial_on and cfg.patch_adversary and patch_sites:
        shape = data.images.x.shape[1:]
        device = model_device(model)
        masks = [patch_mask(data.spec, shape, (r, c), side, device) for r, c, side in patch_sites]
    bank = None
    if adversarial_on and not masks and cfg.adversarial_bank > 0:
        bank = _bank(model, data, cfg, flagged[0])  # on the backdoored weights, before reset
    if cfg.reinit and flagged:
        head.reinit_rows(flagged, torch.Generator().manual_seed(cfg.seed + 7919))
    stream = BatchStream(
        data, cfg.batch_size, gen, model_device(model), cfg.augment, balanced=cfg.relearn_balanced
    )
    # Nothing flagged: a plain fine-tune (the reference), or held like the adversarial
    # relearning (anchored, at its rate) where that would have run.
    held = not flagged and cfg.unflagged_relearn == "anchored" and cfg.relearn_adversarial > 0
    base_lr = cfg.relearn_lr
    if (adversarial_on or held) and cfg.relearn_lr_adversarial is not None:
        base_lr = cfg.relearn_lr_adversarial
    anchor = None
    if (flagged or held) and cfg.relearn_anchor:
        free = list(flagged) if cfg.reinit else []
        bound = 1.0 / (base_lr * cfg.relearn_anchor)
        anchor = anchor_to(model0, data, free, bound, progress)
    opt = torch.optim.SGD(
        model.parameters(),
        lr=base_lr,
        momentum=cfg.relearn_momentum,
        weight_decay=cfg.relearn_weight_decay,
    )
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, cfg.relearn_t_max or 1))

    def cosines() -> torch.Tensor:
        return nn.functional.cosine_similarity(head.rows()[flagged], w_ori, dim=1)

    @torch.no_grad()
    def cosines_by_class() -> dict[str, float]:
        """For the record: each flagged row's cosine, by class index as a string."""
        cos = cosines().tolist() if flagged else []
        return {str(k): float(c) for k, c in zip(flagged, cos, strict=True)}

    def loss_fn(logits: torch.Tensor, labels: torch.Tensor):
        ce = nn.functional.cross_entropy(logits, labels)
        if not flagged or cfg.relearn_alpha == 0:
            return ce, ce
        total = ce + cfg.relearn_alpha * _penalty(cosines(), cfg.penalty)
        return total, total

    adversarial = None
    if adversarial_on:
        eps = model_space_eps(cfg.adversarial_eps, data.spec)
        adv_gen = torch.Generator().manual_seed(cfg.seed + 104729)

        def adversarial(inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            if masks:
                mask = masks[int(torch.randint(len(masks), (1,), generator=adv_gen))]
                patch = patch_towards_class(
                    model, inputs, labels, flagged[0], mask, data.spec,
                    cfg.adversarial_steps, adv_gen,
                )  # fmt: skip
                logits = model(paste(inputs, patch, mask))
            else:
                if bank is not None:
                    delta = bank[int(torch.randint(len(bank), (1,), generator=adv_gen))][None]
                else:
                    delta = towards_class(
                        model, inputs, labels, flagged[0], eps, cfg.adversarial_steps, adv_gen
                    )
                logits = model(inputs + delta)
            ce = _adversarial_cross_entropy(logits, labels, flagged[0], cfg.adversarial_loss)
            if cfg.warp_adversary and not masks:
                control = warp_towards_class(
                    model, inputs, labels, flagged[0], data.spec, cfg.warp_shift,
                    cfg.warp_grid, cfg.adversarial_steps, adv_gen,
                )  # fmt: skip
                warped = model(warp(inputs, control, data.spec))
                ce = ce + _adversarial_cross_entropy(
                    warped, labels, flagged[0], cfg.adversarial_loss
                )
            return cfg.relearn_adversarial * ce

    taught = None  # every class
    if cfg.distill_classes in ("unflagged", "own_images") and flagged:
        taught = [k for k in range(head.num_classes) if k not in flagged]

    def extra(inputs: torch.Tensor, labels: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        term = adversarial(inputs, labels) if adversarial is not None else logits.new_zeros(())
        if teacher is not None:
            classes = taught
            if cfg.distill_classes == "own_images" and taught is not None:
                classes = _own_images_mask(labels, taught, logits.shape[1])
            term = term + cfg.relearn_distill * _distillation(teacher, inputs, logits, classes)
        if anchor is not None:
            term = term + cfg.relearn_anchor * anchor.penalty(model)
        return term

    extras = any(term is not None for term in (adversarial, teacher, anchor))
    curve = []
    for epoch in range(cfg.relearn_epochs):
        model.train()
        if cfg.relearn_bn == "eval":
            freeze_batchnorm(model)
        lr = current_lr(opt)
        stats = train_epoch(
            model,
            stream,
            opt,
            loss_fn if flagged else cross_entropy,
            clip_norm=cfg.relearn_clip_norm or None,  # 0: no clipping
            after_step_acc=cfg.relearn_acc_after_step,
            extra_loss=extra if extras else None,
        )
        sched.step()
        row = {
            "epoch": epoch + 1,
            "loss": stats.loss,
            "acc": stats.acc,
            "lr": lr,
            "cos": cosines_by_class(),
        }
        curve.append(row)
        notify(progress, phase=phase, epochs=cfg.relearn_epochs, **row)
    reinitialised = list(flagged) if cfg.reinit else []
    refit = None
    if cfg.refit_epochs and reinitialised and adversarial is not None:
        judged = data.holdout if data.holdout is not None and len(data.holdout) else data.images
        rows, class_acc = lost_rows(
            model0, model, reinitialised, judged, data.spec, head.num_classes,
            cfg.refit_class_drop,
        )  # fmt: skip
        refit_curve = refit_rows(
            model, head, rows, stream, cfg.refit_epochs, cfg.refit_lr,
            lambda inputs, labels, _logits: adversarial(inputs, labels), progress,
        ) if rows else []  # fmt: skip
        refit = {
            "judged_on": "holdout" if judged is data.holdout else "purify",
            "class_acc": class_acc, "rows": rows, "epochs": cfg.refit_epochs if rows else 0,
            "lr": cfg.refit_lr, "curve": refit_curve,
        }  # fmt: skip
        if rows:
            refit["cos"] = cosines_by_class()
    model.eval()
    adversary = None
    if adversarial_on:
        adversary = "patch" if masks else ("linf+warp" if cfg.warp_adversary else "linf")
    return model, {
        "curve": curve, "reinitialised": reinitialised, "lr": base_lr, "adversary": adversary,
        "bank": 0 if bank is None else len(bank),
        "distill": cfg.relearn_distill if teacher is not None else 0.0, "refit": refit,
        "anchor": None if anchor is None else {"weight": cfg.relearn_anchor, **anchor.summary()},
    }  # fmt: skip


def _adversarial_cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, target: int, loss: str
) -> torch.Tensor:
    """Cross-entropy of the attacked images against their true labels: over all of them
    (``all``), or only over those the attack sends to ``target`` (``fooled``: summed over
    them, divided by the batch size, so the others' clean decisions are left alone)."""
    if loss == "fooled":
        fooled = logits.detach().argmax(-1) == target
        ce = nn.functional.cross_entropy(logits, labels, reduction="none")
        return (ce * fooled).sum() / len(labels)
    return nn.functional.cross_entropy(logits, labels)


def _own_images_mask(labels: torch.Tensor, taught: list[int], num_classes: int) -> torch.Tensor:
    """[batch, classes] mask of the logits distilled: the ``taught`` classes on every image,
    every class on the images labelled as one of the others (the flagged classes)."""
    keep = torch.zeros(len(labels), num_classes, dtype=torch.bool, device=labels.device)
    keep[:, taught] = True
    flagged_own = ~keep[torch.arange(len(labels), device=labels.device), labels]
    keep[flagged_own] = True
    return keep


def _distillation(
    teacher: nn.Module,
    inputs: torch.Tensor,
    logits: torch.Tensor,
    classes: list[int] | torch.Tensor | None = None,
) -> torch.Tensor:
    """KL divergence from the teacher's softened predictions on ``inputs`` to ``logits``'s,
    scaled by T² so that its gradients keep their size whatever the temperature.

    Args:
        classes: Compare only these classes' logits (softmax over them); a [batch,
            classes] boolean mask: per image, only its True logits; None: all.
    """
    t = DISTILL_TEMPERATURE
    with torch.no_grad():
        teacher_logits = teacher(inputs).float()
    student_logits = logits.float()
    if isinstance(classes, torch.Tensor):
        return _masked_kl(teacher_logits / t, student_logits / t, classes) * t * t
    if classes is not None:
        teacher_logits, student_logits = teacher_logits[:, classes], student_logits[:, classes]
    target = nn.functional.log_softmax(teacher_logits / t, dim=-1)
    student = nn.functional.log_softmax(student_logits / t, dim=-1)
    kl = nn.functional.kl_div(student, target, reduction="batchmean", log_target=True)
    return kl * t * t


def _masked_kl(teacher: torch.Tensor, student: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Batch-mean KL divergence over each row's kept logits (softmax over those alone)."""
    floor = torch.finfo(student.dtype).min / 4  # exp() of it is 0; no inf to make NaNs
    target = nn.functional.log_softmax(teacher.masked_fill(~keep, floor), dim=-1)
    student = nn.functional.log_softmax(student.masked_fill(~keep, floor), dim=-1)
    each = (target.exp() * (target - student)).masked_fill(~keep, 0.0)
    return each.sum() / len(keep)


def _bank(model: nn.Module, data: TrainingData, cfg: ULRLConfig, target: int) -> torch.Tensor:
    """``cfg.adversarial_bank`` perturbations towards ``target`` from all clean images."""
    device = model_device(model)
    inputs, labels = clean_inputs(data, device)
    eps = model_space_eps(cfg.adversarial_eps, data.spec)
    generator = torch.Generator().manual_seed(cfg.seed + 15485863)
    return perturbation_bank(
        model, inputs, labels, target, eps, cfg.adversarial_steps, cfg.adversarial_bank,
        generator, grad_chunk(device),
    ).detach()  # fmt: skip


@register_defense("ulrl", config_cls=ULRLConfig, amp=True)
def ulrl(
    model: nn.Module,
    clean: TrainingData,
    config: ULRLConfig | None = None,
    progress: Progress | None = None,
) -> DefenseResult:
    """ULRL: unlearn to flag backdoor neurons, re-initialise them, relearn on clean data.

    Args:
        model: The model to defend; left unchanged (the result is a new module).
        clean: The purify split, its preprocessing and (optionally) the held-out split.
        config: Settings; default :meth:`ULRLConfig.auto`.
        progress: Receives one event per epoch of each phase.

    Returns:
        The relearned model and the details the report needs.
    """
    head = locate_head(model)
    cfg = (config or ULRLConfig.auto()).resolve(clean.num_samples, head.num_classes)
    seed_everything(cfg.seed, deterministic=None)
    t0 = time.perf_counter()
    found = _unlearn(model, clean, cfg, progress)
    direction = found.pop("_direction")
    t1 = time.perf_counter()
    purified, relearned = relearn(
        model, clean, cfg, found["flagged"], progress, direction=direction,
        patch_sites=_patch_sites(found, clean),
    )  # fmt: skip
    t2 = time.perf_counter()
    details: dict[str, Any] = {
        "method": "ulrl",
        "config": asdict(cfg),
        "seed": cfg.seed,
        "head": head.describe(),
        "num_samples": clean.num_samples,
        "batchnorm_layers": count_batchnorm(model),
        "flagged": found["flagged"],
        "unlearn": found,
        "relearn": relearned,
        "timings": {"unlearn_s": t1 - t0, "relearn_s": t2 - t1, "total_s": t2 - t0},
    }
    return with_holdout_accuracy(model, purified, clean, details)
