"""ULRL auto on a really backdoored digits model, and on a clean one."""

from __future__ import annotations

import pytest

from ulrl_edge.defenses import get_defense
from ulrl_edge.defenses.ulrl import ULRLConfig
from ulrl_edge.defenses.ulrl_config import ADVERSARIAL_WEIGHT, DISTILL_WEIGHT

# The probes' questions are also asked by test_patch_probe (the clean model) and by
# test_flagged_adversary (adversarial_lab); the first answer stands.
pytestmark = pytest.mark.usefixtures("remembered_probes")


def test_auto_removes_a_badnets_backdoor_and_keeps_accuracy(adversarial_lab):
    # Auto's own adversarial and distillation terms run (24 images per class: the CLI tests).
    lab = adversarial_lab
    acc0, asr0 = lab.acc(lab.model), lab.asr(lab.model)
    assert asr0 >= 0.9, "the fixture must really be backdoored"
    result = get_defense("ulrl")(lab.model, lab.training_data(), ULRLConfig.auto())
    assert result.details["config"]["relearn_adversarial"] == ADVERSARIAL_WEIGHT
    assert result.details["relearn"]["distill"] == DISTILL_WEIGHT
    # BadNets: the patch probe finds the target, and relearning meets pasted patches.
    assert result.details["unlearn"]["patch_probe"]["flagged"] == lab.target
    assert result.details["relearn"]["adversary"] == "patch"
    assert result.details["flagged"] == [lab.target]
    assert lab.asr(result.model) <= 0.10
    assert acc0 - lab.acc(result.model) <= 0.03
    assert result.details["holdout_acc"]["before"] == acc0


def test_plain_fine_tuning_leaves_the_backdoor(backdoored_lab):
    # The contrast that makes the test above meaningful: same data, no unlearning.
    lab = backdoored_lab
    result = get_defense("ft")(lab.model, lab.training_data())
    assert lab.asr(result.model) >= 0.5


def test_auto_flags_nothing_on_a_clean_model(clean_lab):
    result = get_defense("ulrl")(clean_lab.model, clean_lab.training_data(), ULRLConfig.auto())
    assert result.details["flagged"] == []
    assert clean_lab.acc(clean_lab.model) - clean_lab.acc(result.model) <= 0.03
