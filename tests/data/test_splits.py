"""The stratified, seeded purify/verify split."""

from __future__ import annotations

import numpy as np
import pytest

from ulrl_edge.data import ImageSet, stratified_split
from ulrl_edge.errors import BadInput


def _images(counts: list[int]) -> ImageSet:
    y = np.concatenate([np.full(c, k) for k, c in enumerate(counts)])
    x = np.arange(len(y), dtype=np.float32).reshape(-1, 1, 1, 1)  # pixel = index, to track
    return ImageSet(x, y, tuple(str(k) for k in range(len(counts))))


def test_split_is_stratified_disjoint_and_complete():
    images = _images([50, 30, 20])
    purify, verify = stratified_split(images, 0.2, seed=0)
    assert np.bincount(verify.y).tolist() == [10, 6, 4]
    assert np.bincount(purify.y).tolist() == [40, 24, 16]
    ids = np.concatenate([purify.x.ravel(), verify.x.ravel()])
    assert sorted(ids.tolist()) == list(range(100))
    assert np.all(np.diff(verify.x.ravel()) > 0)  # original order kept


def test_split_depends_on_the_seed_only():
    images = _images([40, 40])
    a = stratified_split(images, 0.25, seed=3)[1].x.ravel()
    b = stratified_split(images, 0.25, seed=3)[1].x.ravel()
    c = stratified_split(images, 0.25, seed=4)[1].x.ravel()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_too_few_images_in_a_class():
    images = _images([50, 7])
    with pytest.raises(BadInput, match=r"class 1 has 7 image\(s\).* gives it 1.*8 or more"):
        stratified_split(images, 0.2)
    purify, verify = stratified_split(_images([50, 8]), 0.2)
    assert np.bincount(verify.y).tolist() == [10, 2]


def test_bad_fraction():
    with pytest.raises(BadInput, match="between 0 and 1"):
        stratified_split(_images([10]), 1.0)
