"""Backdoor defenses, by name: ``get_defense("ulrl")(model, clean, config, progress)``.

Each method lives in its own module and registers itself with
:func:`~ulrl_edge.defenses.registry.register_defense`; the registry imports the built-in
ones on first look-up.
"""

from __future__ import annotations

from ulrl_edge.defenses.base import DefenseResult, Progress, TrainingData, seed_everything
from ulrl_edge.defenses.registry import (
    DefenseEntry,
    available_defenses,
    get_defense,
    register_defense,
)

__all__ = [
    "DefenseEntry",
    "DefenseResult",
    "Progress",
    "TrainingData",
    "available_defenses",
    "get_defense",
    "register_defense",
    "seed_everything",
]
