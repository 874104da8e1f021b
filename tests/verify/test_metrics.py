"""ACC/ASR arithmetic and the Wilson interval."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ulrl_edge.verify import compute_metrics, wilson_interval


def test_wilson_interval_known_values():
    # Reference: Wilson (1927); e.g. 8/10 → (0.4902, 0.9433), 0/20 → (0, 0.1611)
    low, high = wilson_interval(8, 10)
    assert (round(low, 4), round(high, 4)) == (0.4902, 0.9433)
    low, high = wilson_interval(0, 20)
    assert low == 0.0 and round(high, 4) == 0.1611
    assert wilson_interval(20, 20)[1] == 1.0
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_metrics_counts_and_json():
    labels = np.array([0, 0, 1, 1, 2, 2])
    predicted = np.array([0, 1, 1, 1, 0, 2])
    metrics = compute_metrics(
        predicted,
        labels,
        4,
        class_names=("a", "b", "c"),
        attack_predicted=np.array([3, 3, 0, 3]),
        attack_labels=np.array([3, 3, 3, 3]),
        target=3,
        mode="all2one",
    )
    assert metrics.accuracy == pytest.approx(4 / 6) and metrics.n_correct == 4
    assert metrics.attack_success_rate == pytest.approx(0.75) and metrics.n_triggered == 4
    assert metrics.confusion == [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]
    assert metrics.per_class_accuracy == {"a": 0.5, "b": 1.0, "c": 0.5, "3": None}
    data = json.loads(json.dumps(metrics.to_dict()))
    assert data["n"] == 6 and data["n_triggered"] == 4
    assert data["ci95"]["accuracy"] == list(wilson_interval(4, 6))
    assert data["ci95"]["attack_success_rate"] == list(wilson_interval(3, 4))


def test_metrics_without_trigger():
    metrics = compute_metrics(np.array([1, 1]), np.array([1, 0]), 2)
    assert metrics.attack_success_rate is None and metrics.n_triggered == 0
    assert metrics.to_dict()["ci95"]["attack_success_rate"] is None
