"""Frozen settings: parity tolerances, verification gates, limits.

Defense configurations (ULRL presets and baselines) live beside each defense in
``ulrl_edge/defenses``; everything here is shared by several stages.
"""

from __future__ import annotations

from dataclasses import dataclass

# A class counts as all but lost when its held-out accuracy falls by this much (absolute):
# what a reset row that never recovered looks like. The report says so, and ULRL's auto
# refits such a row (``refit_class_drop``).
CLASS_LOST_DROP = 0.5

# Share of each class's clean samples held out to verify on (the rest purify).
VERIFY_FRACTION = 0.2

# 2 GiB is protobuf's hard limit for one message; larger weights must use external data.
DEFAULT_MAX_MODEL_BYTES = 2 * 1024**3
DEFAULT_MAX_EXTERNAL_BYTES = 8 * 1024**3


@dataclass(frozen=True)
class ParityTolerance:
    """When two runs of "the same" model count as equal.

    Attributes:
        atol: Largest allowed absolute difference of any output element.
        rtol: Relative tolerance, reported for information (the gate uses ``atol``).
        min_top1_agreement: Fraction of probe inputs whose arg-max must agree.
    """

    atol: float = 1e-4
    rtol: float = 1e-3
    min_top1_agreement: float = 1.0


FP32_PARITY = ParityTolerance()
# fp16 engines cannot match fp32 to 1e-4; top-1 agreement is what a user feels.
FP16_PARITY = ParityTolerance(atol=5e-2, rtol=5e-2, min_top1_agreement=0.995)


@dataclass(frozen=True)
class Limits:
    """Bounds that keep hostile inputs from exhausting the machine.

    Attributes:
        max_model_bytes: Largest .onnx file accepted.
        max_external_bytes: Largest total of external-data files accepted.
        max_tensor_elements: Largest single initializer accepted.
        max_image_pixels: Largest decoded image accepted (decompression bombs).
    """

    max_model_bytes: int = DEFAULT_MAX_MODEL_BYTES
    max_external_bytes: int = DEFAULT_MAX_EXTERNAL_BYTES
    max_tensor_elements: int = 2**31
    max_image_pixels: int = 64 * 1024 * 1024


def limits_from_env(environ: dict[str, str] | None = None) -> Limits:
    """Limits, each raised (or lowered) by an ``ULRL_EDGE_<FIELD>`` environment variable.

    For example ``ULRL_EDGE_MAX_MODEL_BYTES=4294967296`` accepts models up to 4 GiB.

    Raises:
        ValueError: A variable that is not a positive integer (reported at start-up).
    """
    import os

    environ = os.environ if environ is None else environ
    values = {}
    for name in Limits.__dataclass_fields__:
        text = environ.get(f"ULRL_EDGE_{name.upper()}")
        if text is None:
            continue
        try:
            value = int(text)
        except ValueError:
            value = 0
        if value <= 0:
            raise ValueError(f"ULRL_EDGE_{name.upper()}={text!r} must be a positive integer")
        values[name] = value
    return Limits(**values)


DEFAULT_LIMITS = limits_from_env()


@dataclass(frozen=True)
class Gate:
    """The verification gate a purified model must pass.

    Attributes:
        max_acc_drop: Largest allowed drop of held-out clean accuracy (absolute).
        max_asr: Largest allowed attack success rate, when a trigger is known.
    """

    max_acc_drop: float = 0.02
    max_asr: float | None = None
