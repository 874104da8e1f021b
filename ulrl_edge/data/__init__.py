"""Clean samples, preprocessing, splits, triggers and poisoning.

Sources: :func:`load_images` (folders of class subfolders, ``.npz``). Preprocessing:
:class:`PreprocessSpec` resolved by :func:`resolve_spec`. Splits: :func:`stratified_split`.
Triggers: :func:`parse_trigger`, :func:`poison`, :func:`triggered_test_set`.
"""

from __future__ import annotations

from ulrl_edge.data.images import ImageSet
from ulrl_edge.data.preprocess import PreprocessSpec
from ulrl_edge.data.sources import check_labels, load_images
from ulrl_edge.data.spec import METADATA_KEY, resolve_spec
from ulrl_edge.data.splits import stratified_split
from ulrl_edge.data.triggers import (
    Trigger,
    make_trigger,
    parse_trigger,
    poison,
    triggered_test_set,
)

__all__ = [
    "METADATA_KEY",
    "ImageSet",
    "PreprocessSpec",
    "Trigger",
    "check_labels",
    "load_images",
    "make_trigger",
    "parse_trigger",
    "poison",
    "resolve_spec",
    "stratified_split",
    "triggered_test_set",
]
