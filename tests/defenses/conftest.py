"""Tiny digits classifiers (really backdoored or clean) and their clean data splits."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from tests.fixtures.backdoor import cached_case
from ulrl_edge.data import ImageSet, PreprocessSpec, parse_trigger
from ulrl_edge.defenses import TrainingData
from ulrl_edge.defenses.training import predict

TRIGGER = "badnets:size=3"


@dataclass(frozen=True)
class Lab:
    """A trained digits model with its purify split, held-out split and triggered test set."""

    model: object
    spec: PreprocessSpec
    purify: ImageSet
    holdout: ImageSet
    triggered: ImageSet  # non-target held-out images with the trigger
    target: int

    def training_data(self) -> TrainingData:
        return TrainingData(
            self.purify, self.spec, flip=False, crop_padding=2, holdout=self.holdout
        )

    def acc(self, model) -> float:
        return float(np.mean(predict(model, self.holdout, self.spec) == self.holdout.y))

    def asr(self, model) -> float:
        return float(np.mean(predict(model, self.triggered, self.spec) == self.target))

    def holdout_tensors(self, n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The first ``n`` held-out images (None: all) as model input, and their labels."""
        x = torch.from_numpy(np.ascontiguousarray(self.holdout.x[:n]))
        return self.spec.to_model_input_torch(x), torch.from_numpy(self.holdout.y[:n])


def make_lab(trigger_spec: str | None, seed: int = 0, n_purify: int = 300) -> Lab:
    case = cached_case(trigger_spec, seed=seed)
    data = case.data
    clean_train, test = data["clean_train"], data["test"]
    pick = np.sort(np.random.default_rng(seed).permutation(len(clean_train))[:n_purify])
    trigger = parse_trigger(trigger_spec or TRIGGER)
    keep = np.nonzero(test.y != 0)[0]
    triggered = test.subset(keep)
    triggered = triggered.with_images(trigger.apply(triggered.x, channels="gray"))
    return Lab(case.model, data["spec"], clean_train.subset(pick), test, triggered, 0)


@pytest.fixture(scope="session")
def backdoored_lab() -> Lab:
    return make_lab(TRIGGER, seed=1)


@pytest.fixture(scope="session")
def adversarial_lab() -> Lab:
    """The backdoored model with 40 purify images per class: over auto's threshold for the
    adversarial and distillation terms (the path a few hundred images of ten classes take),
    so auto's probes answer once for every test that relearns against the flagged class."""
    return make_lab(TRIGGER, seed=1, n_purify=400)


@pytest.fixture(scope="session")
def clean_lab() -> Lab:
    return make_lab(None, seed=0)
