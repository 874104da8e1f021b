"""MAD outlier test: clear outliers, constant scores, MAD = 0, invariances."""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ulrl_edge.defenses.mad import lower_median, mad_outliers


def test_flags_a_clear_outlier():
    scores = [1.0, 1.1, 0.9, 1.05, 0.95, 1.02, 0.98, 1.01, 0.99, 9.0]
    result = mad_outliers(scores)
    assert result.flagged == (9,)
    assert result.z[9] > 3.5
    assert all(z < 3.5 for z in result.z[:9])


def test_low_outliers_are_not_flagged():
    scores = [1.0, 1.1, 0.9, 1.05, 0.95, 1.02, 0.98, 1.01, 0.99, -9.0]
    assert mad_outliers(scores).flagged == ()


def test_constant_scores_flag_nothing():
    result = mad_outliers([2.5] * 10)
    assert result.mad == 0.0
    assert result.flagged == ()
    assert all(z == 0.0 for z in result.z)


def test_mad_zero_with_one_distinct_value_flags_it():
    result = mad_outliers([1.0] * 9 + [3.0])
    assert result.mad == 0.0
    assert result.flagged == (9,)
    assert math.isinf(result.z[9])
    assert result.to_dict()["z"][9] is None  # JSON-ready


def test_mad_zero_ignores_rounding_noise():
    assert mad_outliers([1.0] * 9 + [1.0 + 1e-12]).flagged == ()


def test_reference_numbers_lower_median():
    # torch.median convention: the lower middle value for an even count.
    scores = [1, 2, 3, 4, 5, 6, 7, 8, 9, 100]
    result = mad_outliers(scores)
    assert result.median == 5.0
    assert result.mad == 2.0  # |x - 5| sorted: 0,1,1,2,2,3,3,4,4,95 -> lower middle 2
    assert result.z[9] == pytest.approx(95 / (1.4826 * 2))
    assert result.flagged == (9,)


def test_max_flagged_keeps_the_largest_z_or_the_first_index():
    scores = [1.0, 1.1, 0.9, 1.05, 0.95, 1.02, 5.0, 0.99, 20.0, 9.0]
    by_z = mad_outliers(scores, max_flagged=2)
    assert by_z.candidates == (8, 9, 6)
    assert by_z.flagged == (8, 9)
    by_index = mad_outliers(scores, max_flagged=2, rank="index")
    assert by_index.flagged == (6, 8)
    assert mad_outliers(scores, max_flagged=0).flagged == ()


def test_rejects_empty_and_non_finite():
    with pytest.raises(ValueError):
        mad_outliers([])
    with pytest.raises(ValueError):
        mad_outliers([1.0, float("nan")])
    with pytest.raises(ValueError):
        mad_outliers([1.0, 2.0], rank="size")


def test_lower_median_matches_torch():
    import torch

    rng = np.random.default_rng(0)
    for n in range(1, 12):
        values = rng.normal(size=n)
        assert lower_median(values) == pytest.approx(float(torch.median(torch.tensor(values))))


finite = st.floats(min_value=0.0, max_value=1e3, allow_nan=False, allow_infinity=False)
score_lists = st.lists(finite, min_size=3, max_size=20)


def _robust(result) -> bool:
    """No z so close to the threshold, or to another flagged z, that rounding could move it
    across (flagged rows are ranked by z: near-ties may swap, e.g. 1000 and 999.9999…)."""
    flagged = sorted(result.z[k] for k in result.flagged)
    return (
        result.mad > 1e-6 * max(1.0, max(abs(s) for s in result.scores))
        and all(abs(z - result.threshold) > 1e-6 for z in result.z)
        and all(b - a > 1e-6 * max(1.0, abs(b)) for a, b in pairwise(flagged))
    )


@settings(max_examples=150)
@given(score_lists, st.floats(min_value=1e-3, max_value=1e3))
def test_scale_invariance(scores, factor):
    base = mad_outliers(scores, max_flagged=None)
    assume(_robust(base))
    scaled = mad_outliers([s * factor for s in scores], max_flagged=None)
    assert scaled.flagged == base.flagged
    np.testing.assert_allclose(scaled.z, base.z, rtol=1e-6)


@settings(max_examples=150)
@given(score_lists, st.floats(min_value=-1e3, max_value=1e3))
def test_shift_invariance(scores, shift):
    base = mad_outliers(scores, max_flagged=None)
    assume(_robust(base))
    shifted = mad_outliers([s + shift for s in scores], max_flagged=None)
    assert set(shifted.flagged) == set(base.flagged)
    np.testing.assert_allclose(shifted.z, base.z, rtol=1e-5, atol=1e-6)


@settings(max_examples=150)
@given(score_lists)
def test_flagged_rows_lie_above_the_median_and_past_the_threshold(scores):
    result = mad_outliers(scores, max_flagged=None)
    for k in result.flagged:
        assert result.scores[k] > result.median
        assert result.z[k] > result.threshold
    assert len(mad_outliers(scores, max_flagged=2).flagged) <= 2
