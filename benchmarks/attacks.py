"""Benchmark attacks as ``ulrl_edge.data`` triggers: all-to-one to class 0, 10% poisoning.

Every attack is dirty-label poisoning through :func:`ulrl_edge.data.poison` (SIG too: the
clean-label variant rarely implants in a few epochs on a 10k subset, so the sinusoid is
stamped on non-target images that are relabelled, as BackdoorBench's ``sig`` with
``pratio`` over all classes does).

``clean`` is no attack: the same training with nothing poisoned (its ASR is BadNets'
trigger measured on a model that never saw it). It asks whether a defense flags a class,
and what it costs, on a model with no backdoor.

Two extra attacks that need no external data:

* ``trojan``: a 5×5 seeded random black/white patch at the top-left corner (a Trojan-like
  pattern trigger, unlike BadNets' solid white square).
* ``lowfreq``: a blend (alpha 0.15) with a smooth, low-frequency pattern (bicubic
  upsampling of 4×4 noise), written once to a PNG in the cache folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ulrl_edge.data import Trigger, parse_trigger

TARGET = 0
RATE = 0.10


@dataclass(frozen=True)
class Attack:
    """A named attack: its trigger spec, the mode it poisons with, and its poisoning rate."""

    name: str
    spec: str
    mode: str = "all2one"
    rate: float = RATE


def _lowfreq_png(cache: Path, size: int) -> Path:
    path = cache / f"lowfreq_{size}.png"
    if not path.exists():
        noise = np.random.default_rng(7).random((4, 4, 3))
        small = Image.fromarray((noise * 255).astype(np.uint8))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.png")  # parallel workers may race here
        small.resize((size, size), Image.BICUBIC).save(tmp)
        tmp.replace(path)
    return path


def attack_specs(cache: Path, size: int) -> dict[str, Attack]:
    """Every attack, keyed by name, for ``size``×``size`` images."""
    return {
        "badnets": Attack("badnets", "badnets:size=3,pos=br,margin=1"),
        "blend": Attack("blend", "blend:alpha=0.2,seed=0"),
        "sig": Attack("sig", "sig:delta=40,freq=6"),
        "wanet": Attack("wanet", "wanet:k=4,s=1.0,seed=0"),
        "trojan": Attack("trojan", "badnets:size=5,pos=tl,margin=1,color=random,seed=3"),
        "lowfreq": Attack("lowfreq", f"blend:img={_lowfreq_png(cache, size)},alpha=0.15"),
        "clean": Attack("clean", "badnets:size=3,pos=br,margin=1", rate=0.0),
    }


ATTACKS = ("badnets", "blend", "sig", "wanet", "trojan", "lowfreq", "clean")


def trigger_of(attack: Attack) -> Trigger:
    return parse_trigger(attack.spec)
