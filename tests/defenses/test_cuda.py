"""Every defense on a CUDA model (``-m gpu``; skipped where torch sees no CUDA device)."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch

from ulrl_edge.defenses import available_defenses, get_defense
from ulrl_edge.defenses.training import predict
from ulrl_edge.defenses.ulrl import ULRLConfig

pytestmark = pytest.mark.gpu

# Shorter than the defaults where a default runs for minutes; the code paths are the same.
SHORT = {"fp": {"epochs": 5}, "anp": {"nb_iter": 200}, "sau": {"n_rounds": 5}}


@pytest.fixture(autouse=True)
def _needs_cuda():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")


@pytest.mark.parametrize("name", sorted(available_defenses()))
def test_defense_runs_on_cuda_and_its_model_moves_back(name, backdoored_lab):
    lab = backdoored_lab
    entry = get_defense(name)
    config = dataclasses.replace(entry.config_cls(), **SHORT.get(name, {}))
    model = copy.deepcopy(lab.model).cuda()
    result = entry(model, lab.training_data(), config)
    assert all(p.is_cuda for p in result.model.parameters())
    on_gpu = predict(result.model, lab.holdout, lab.spec)
    on_cpu = predict(copy.deepcopy(result.model).cpu(), lab.holdout, lab.spec)
    assert np.mean(on_gpu == on_cpu) >= 0.99  # what is exported (on CPU) is what was trained


def test_ulrl_auto_on_cuda_removes_the_backdoor(backdoored_lab):
    lab = backdoored_lab
    acc0 = lab.acc(lab.model)
    model = copy.deepcopy(lab.model).cuda()
    result = get_defense("ulrl")(model, lab.training_data(), ULRLConfig.auto())
    assert result.details["flagged"] == [lab.target]
    assert lab.asr(result.model) <= 0.10
    assert acc0 - lab.acc(result.model) <= 0.03


def test_ulrl_auto_under_amp_on_cuda_removes_the_backdoor(backdoored_lab):
    from ulrl_edge.defenses.precision import amp_dtype, mixed_precision

    lab = backdoored_lab
    acc0 = lab.acc(lab.model)
    model = copy.deepcopy(lab.model).cuda()
    with mixed_precision("cuda", amp_dtype("cuda")):
        result = get_defense("ulrl")(model, lab.training_data(), ULRLConfig.auto())
    assert all(p.dtype == torch.float32 for p in result.model.parameters())
    assert result.details["flagged"] == [lab.target]
    assert lab.asr(result.model) <= 0.10
    assert acc0 - lab.acc(result.model) <= 0.03
