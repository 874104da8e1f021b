"""Defense registry: look-up, errors with suggestions, registration rules."""

from __future__ import annotations

import pytest

from ulrl_edge.defenses import available_defenses, get_defense, register_defense
from ulrl_edge.defenses.ft import FTConfig
from ulrl_edge.defenses.ulrl import ULRLConfig
from ulrl_edge.errors import BadInput


def test_builtins_are_registered_with_their_configs():
    assert {"ulrl", "ft"} <= set(available_defenses())
    assert get_defense("ulrl").config_cls is ULRLConfig
    assert get_defense("ft").config_cls is FTConfig
    assert get_defense("ulrl").summary.startswith("ULRL")


def test_unknown_name_lists_choices_and_suggests():
    with pytest.raises(BadInput) as err:
        get_defense("ulr")
    message = str(err.value)
    assert "'ulr'" in message and "ft" in message and "ulrl" in message
    assert "Did you mean 'ulrl'?" in message
    assert err.value.exit_code == 3


def test_unknown_name_without_close_match_has_no_suggestion():
    with pytest.raises(BadInput) as err:
        get_defense("zzzzzz")
    assert "Did you mean" not in str(err.value)


def test_registering_a_name_twice_is_a_bug():
    def first(model, clean, config=None, progress=None):
        """First."""

    def second(model, clean, config=None, progress=None):
        """Second."""

    register_defense("_test_dup", config_cls=FTConfig)(first)
    register_defense("_test_dup", config_cls=FTConfig)(first)  # idempotent
    with pytest.raises(ValueError):
        register_defense("_test_dup", config_cls=FTConfig)(second)
