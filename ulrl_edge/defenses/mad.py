"""Outliers by median absolute deviation: which output neurons moved suspiciously far.

``z_k = |Δ_k − median(Δ)| / (1.4826 · MAD(Δ))``; neuron k is suspicious when ``z_k`` exceeds
the threshold (3.5) and ``Δ_k`` lies above the median. The median is the *lower* median
(``torch.median``'s convention, which the reference uses): for 10 classes, the 5th smallest.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

# 1 / Φ⁻¹(3/4): makes MAD a consistent estimator of the standard deviation for normal data.
MAD_SCALE = 1.4826
# With MAD = 0 (over half the scores equal), deviations below this fraction of the largest
# score count as ties rather than as infinitely far outliers (rounding noise).
_TIE_RTOL = 1e-6


def lower_median(values: np.ndarray) -> float:
    """The lower of the two middle values for even counts (as ``torch.median``)."""
    ordered = np.sort(np.asarray(values, dtype=np.float64))
    return float(ordered[(len(ordered) - 1) // 2])


@dataclass(frozen=True)
class MADResult:
    """The outlier test over one score per neuron.

    Attributes:
        scores: The score Δ of each neuron.
        median: Lower median of the scores.
        mad: Lower median of |Δ − median| (unscaled).
        z: Robust z-score of each neuron (``inf`` where MAD = 0 and Δ differs).
        threshold: z above which a neuron is suspicious.
        candidates: Every neuron with z > threshold and Δ > median, ranked.
        flagged: The first ``max_flagged`` candidates.
        rank: ``z`` (largest z first) or ``index`` (the reference's index order).
    """

    scores: tuple[float, ...]
    median: float
    mad: float
    z: tuple[float, ...]
    threshold: float
    candidates: tuple[int, ...]
    flagged: tuple[int, ...]
    rank: str

    def to_dict(self) -> dict:
        """JSON-ready (infinite z written as None)."""
        data = asdict(self)
        data["z"] = [None if math.isinf(v) else v for v in self.z]
        for key in ("scores", "candidates", "flagged"):
            data[key] = list(data[key])
        return data


def mad_outliers(
    scores: Sequence[float] | np.ndarray,
    *,
    threshold: float = 3.5,
    max_flagged: int | None = 2,
    rank: Literal["z", "index"] = "z",
    scale: float = MAD_SCALE,
) -> MADResult:
    """Flag the scores that lie far above the rest.

    Args:
        scores: One non-negative-or-not score per neuron (at least one).
        threshold: Robust z above which a score is an outlier.
        max_flagged: Keep at most this many (None: all).
        rank: Order candidates by decreasing z (ties by index) or by index, the reference's
            behaviour (it keeps the first two by index).
        scale: Consistency constant multiplying MAD.

    Returns:
        The full test, so the report can show every z.

    Raises:
        ValueError: For an empty score list or non-finite scores.
    """
    values = np.asarray(scores, dtype=np.float64).reshape(-1)
    if values.size == 0:
        raise ValueError("no scores to test")
    if not np.all(np.isfinite(values)):
        raise ValueError("scores must be finite")
    median = lower_median(values)
    deviation = np.abs(values - median)
    mad = lower_median(deviation)
    if mad > 0:
        with np.errstate(over="ignore"):  # a denormal MAD: those z are rightly infinite
            z = deviation / (scale * mad)
    else:
        tie = _TIE_RTOL * float(np.max(np.abs(values)))
        z = np.where(deviation > tie, np.inf, 0.0)
    above = values > median
    candidates = [int(k) for k in np.nonzero((z > threshold) & above)[0]]
    if rank == "z":
        candidates.sort(key=lambda k: (-z[k], k))
    elif rank != "index":
        raise ValueError(f"rank must be 'z' or 'index', got {rank!r}")
    flagged = candidates if max_flagged is None else candidates[: max(0, max_flagged)]
    return MADResult(
        scores=tuple(float(v) for v in values),
        median=median,
        mad=mad,
        z=tuple(float(v) for v in z),
        threshold=float(threshold),
        candidates=tuple(candidates),
        flagged=tuple(flagged),
        rank=rank,
    )
