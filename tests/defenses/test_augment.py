"""Random crop with padding and flips on NHWC batches: shapes, content, seeding."""

from __future__ import annotations

import torch

from ulrl_edge.data.augment import random_crop_flip


def test_crop_moves_content_within_a_zero_border():
    x = torch.zeros(64, 8, 8, 1)
    x[:, 3, 3, 0] = 1.0
    out = random_crop_flip(x, padding=2, generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    assert torch.all(out.sum(dim=(1, 2, 3)) == 1.0)  # the dot stays inside (shift <= 2)
    positions = {tuple(torch.nonzero(img[..., 0])[0].tolist()) for img in out}
    assert len(positions) > 5
    assert all(1 <= r <= 5 and 1 <= c <= 5 for r, c in positions)
    assert x[:, 3, 3, 0].sum() == 64  # input untouched


def test_flip_mirrors_about_half():
    x = torch.zeros(200, 4, 4, 3)
    x[:, :, 0, :] = 1.0
    out = random_crop_flip(x, padding=0, flip=True, generator=torch.Generator().manual_seed(1))
    mirrored = out[:, :, 3, 0].sum(dim=1) == 4
    assert 60 < int(mirrored.sum()) < 140
    assert torch.all(out[~mirrored][:, :, 0, :] == 1.0)


def test_same_generator_seed_same_batch():
    x = torch.rand(16, 8, 8, 3)
    a = random_crop_flip(x, padding=4, flip=True, generator=torch.Generator().manual_seed(3))
    b = random_crop_flip(x, padding=4, flip=True, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert torch.equal(random_crop_flip(x, padding=0), x)
