"""ACC, ASR, per-class accuracy and confusion counts from predicted labels.

Definitions follow BackdoorBench: ACC is top-1 accuracy on clean images; ASR is the share of
triggered images, whose true label is not the target, classified as the attack wants (the
target for all-to-one, the mapped label for all-to-all). Both come with a 95% Wilson score
interval, which stays inside [0, 1] and is honest for the few hundred images a field check
has.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

Z95 = 1.959963984540054  # two-sided 95% normal quantile


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``successes / n``.

    Returns:
        (low, high); (0.0, 1.0) when ``n`` is 0.
    """
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Metrics:
    """What ``verify`` measures on one model.

    Attributes:
        accuracy: Top-1 accuracy on the clean images.
        attack_success_rate: ASR on the triggered images, or None without a trigger.
        n: Number of clean images.
        n_triggered: Number of triggered images (0 without a trigger).
        n_correct: Clean images classified correctly.
        n_attack_success: Triggered images classified as the attack wants.
        accuracy_ci95: Wilson 95% interval of ``accuracy``.
        attack_success_rate_ci95: Wilson 95% interval of the ASR, or None.
        per_class_accuracy: Accuracy per class name; None for classes without images.
        confusion: K×K counts, rows the true class, columns the predicted one.
        class_names: Name of each of the model's K classes.
        target: The attack target (all2one), or None.
        mode: ``all2one`` or ``all2all`` when a trigger was given, else None.
        trigger: The trigger's canonical spec, or None.
    """

    accuracy: float
    attack_success_rate: float | None
    n: int
    n_triggered: int
    n_correct: int
    n_attack_success: int | None
    accuracy_ci95: tuple[float, float]
    attack_success_rate_ci95: tuple[float, float] | None
    per_class_accuracy: dict[str, float | None] = field(default_factory=dict)
    confusion: list[list[int]] = field(default_factory=list)
    class_names: tuple[str, ...] = ()
    target: int | None = None
    mode: str | None = None
    trigger: str | None = None

    def to_dict(self) -> dict:
        """JSON-ready: ``accuracy``, ``attack_success_rate``, ``n``, ``n_triggered``, ``ci95``,
        ``per_class_accuracy``, ``confusion`` and the counts behind the rates."""
        asr_ci = self.attack_success_rate_ci95
        return {
            "accuracy": self.accuracy,
            "attack_success_rate": self.attack_success_rate,
            "n": self.n,
            "n_triggered": self.n_triggered,
            "n_correct": self.n_correct,
            "n_attack_success": self.n_attack_success,
            "ci95": {
                "accuracy": list(self.accuracy_ci95),
                "attack_success_rate": list(asr_ci) if asr_ci is not None else None,
            },
            "per_class_accuracy": dict(self.per_class_accuracy),
            "confusion": [list(row) for row in self.confusion],
            "class_names": list(self.class_names),
            "target": self.target,
            "mode": self.mode,
            "trigger": self.trigger,
        }


def class_names_for(names: tuple[str, ...], num_classes: int) -> tuple[str, ...]:
    """The source's class names, padded with indices up to the model's K classes."""
    return tuple(names[:num_classes]) + tuple(str(i) for i in range(len(names), num_classes))


def compute_metrics(
    predicted: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    *,
    class_names: tuple[str, ...] = (),
    attack_predicted: np.ndarray | None = None,
    attack_labels: np.ndarray | None = None,
    target: int | None = None,
    mode: str | None = None,
    trigger: str | None = None,
) -> Metrics:
    """Metrics from predicted class indices.

    Args:
        predicted: Arg-max of the model on the clean images.
        labels: True labels of the clean images (all in 0..K-1).
        num_classes: K, the model's number of outputs.
        class_names: Names for per-class accuracy (padded with indices).
        attack_predicted: Arg-max on the triggered images, or None without a trigger.
        attack_labels: The labels the attack wants for those images.
        target: Recorded in the result.
        mode: Recorded in the result.
        trigger: Recorded in the result.
    """
    predicted = np.asarray(predicted, dtype=np.int64)
    labels = np.asarray(labels, dtype=np.int64)
    n = len(labels)
    n_correct = int((predicted == labels).sum())
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    names = class_names_for(tuple(class_names), num_classes)
    per_class: dict[str, float | None] = {}
    for k, name in enumerate(names):
        total = int(confusion[k].sum())
        per_class[name] = float(confusion[k, k] / total) if total else None

    asr = asr_ci = n_success = None
    n_triggered = 0
    if attack_predicted is not None:
        attack_predicted = np.asarray(attack_predicted, dtype=np.int64)
        n_triggered = len(attack_predicted)
        n_success = int((attack_predicted == np.asarray(attack_labels)).sum())
        asr = n_success / n_triggered if n_triggered else 0.0
        asr_ci = wilson_interval(n_success, n_triggered)
    return Metrics(
        accuracy=n_correct / n if n else 0.0,
        attack_success_rate=asr,
        n=n,
        n_triggered=n_triggered,
        n_correct=n_correct,
        n_attack_success=n_success,
        accuracy_ci95=wilson_interval(n_correct, n),
        attack_success_rate_ci95=asr_ci,
        per_class_accuracy=per_class,
        confusion=confusion.tolist(),
        class_names=names,
        target=target,
        mode=mode,
        trigger=trigger,
    )
