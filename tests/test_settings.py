"""``--set KEY=VALUE`` parsing against each defense's config."""

import pytest

from ulrl_edge.defenses.ibau import IBAUConfig
from ulrl_edge.defenses.ulrl import ULRLConfig
from ulrl_edge.errors import BadInput
from ulrl_edge.settings import parse_overrides


def test_tuple_settings_keep_their_element_type():
    assert parse_overrides(IBAUConfig, ["betas=0.8,0.99"]) == {"betas": (0.8, 0.99)}
    assert parse_overrides(ULRLConfig, ["unlearn_milestones=5,10"]) == {
        "unlearn_milestones": (5, 10)
    }


def test_overrides_apply_through_the_config():
    pairs = parse_overrides(ULRLConfig, ["relearn_epochs=3", "augment=false", "penalty=cos2"])
    cfg = ULRLConfig.paper().with_overrides(**pairs)
    assert (cfg.relearn_epochs, cfg.augment, cfg.penalty) == (3, False, "cos2")


def test_unknown_key_suggests_the_nearest():
    with pytest.raises(BadInput, match="did you mean 'relearn_epochs'"):
        parse_overrides(ULRLConfig, ["relearn_epoch=3"])


def test_bad_value_names_the_key():
    with pytest.raises(BadInput, match="relearn_epochs=many"):
        parse_overrides(ULRLConfig, ["relearn_epochs=many"])
