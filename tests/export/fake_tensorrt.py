"""A stand-in for the ``tensorrt`` module: records what build_engine asks of TensorRT.

It mirrors the TensorRT 10 Python names build_engine uses (checked against the 10.x and 11.x
binding wheels); with ``v11=True`` the weak-typing names TensorRT 11 removed are absent. It
proves the control flow and the options passed, not TensorRT itself: that is what the
``trt``-marked tests and benchmarks/gpu_check.py do on a GPU.
"""

from __future__ import annotations

import types
from typing import Any


def make_fake_tensorrt(
    *,
    version: str = "10.3.0",
    v11: bool = False,
    fast_fp16: bool = True,
    fast_int8: bool = True,
    dla_cores: int = 0,
    parse_error: str | None = None,
    build_fails: bool = False,
    builder_fails: bool = False,
) -> types.ModuleType:
    trt = types.ModuleType("tensorrt")
    trt.__version__ = "11.4.0" if v11 else version
    trt.built = []  # (network, config) of every build

    class ILogger:
        INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = range(5)

        def __init__(self) -> None:
            pass

    flags = {"TF32": "TF32", "GPU_FALLBACK": "GPU_FALLBACK"}
    if not v11:
        flags.update(FP16="FP16", INT8="INT8")
    BuilderFlag = type("BuilderFlag", (), flags)  # noqa: N806 - TensorRT's name
    MemoryPoolType = type("MemoryPoolType", (), {"WORKSPACE": "WORKSPACE"})  # noqa: N806
    DeviceType = type("DeviceType", (), {"GPU": "GPU", "DLA": "DLA"})  # noqa: N806

    class Profile:
        def __init__(self) -> None:
            self.shapes: dict[str, tuple] = {}

        def set_shape(self, name, low, opt, high) -> None:
            self.shapes[name] = (tuple(low), tuple(opt), tuple(high))

    class Config:
        def __init__(self) -> None:
            self.flags: set[str] = {"TF32"}  # TensorRT's default
            self.pools: dict[str, int] = {}
            self.profiles: list[Profile] = []
            self.default_device_type = "GPU"
            self.DLA_core = -1
            self.int8_calibrator: Any = None
            self.calibration_profile: Profile | None = None

        def set_flag(self, flag) -> None:
            self.flags.add(flag)

        def clear_flag(self, flag) -> None:
            self.flags.discard(flag)

        def set_memory_pool_limit(self, pool, size) -> None:
            self.pools[pool] = size

        def add_optimization_profile(self, profile) -> int:
            self.profiles.append(profile)
            return len(self.profiles) - 1

        if not v11:

            def set_calibration_profile(self, profile) -> None:
                self.calibration_profile = profile

    class Builder:
        def __init__(self, logger) -> None:
            if builder_fails:
                logger.log(ILogger.ERROR, "CUDA initialization failure with error: 35")
                raise TypeError("pybind11::init(): factory function returned nullptr")
            self.logger = logger
            self.num_DLA_cores = dla_cores
            if not v11:
                self.platform_has_fast_fp16 = fast_fp16
                self.platform_has_fast_int8 = fast_int8

        def create_network(self, flags: int = 0) -> dict:
            return {"layers": []}

        def create_builder_config(self) -> Config:
            return Config()

        def create_optimization_profile(self) -> Profile:
            return Profile()

        def build_serialized_network(self, network, config):
            trt.built.append((network, config))
            calibrator = config.int8_calibrator
            if calibrator is not None:  # what TensorRT does: read every batch, write a cache
                calibrator.batches_seen = 0
                while calibrator.get_batch(["input"]) is not None:
                    calibrator.batches_seen += 1
                calibrator.write_calibration_cache(b"TRT-100300-EntropyCalibration2\n")
            if build_fails:
                self.logger.log(ILogger.ERROR, "out of memory for tactic")
                return None
            return b"FAKE-ENGINE-" + trt.__version__.encode()

    class OnnxParser:
        def __init__(self, network, logger) -> None:
            self.errors = [parse_error] if parse_error else []

        def parse_from_file(self, path: str) -> bool:
            trt.parsed = path
            return not self.errors

        @property
        def num_errors(self) -> int:
            return len(self.errors)

        def get_error(self, i: int) -> str:
            return self.errors[i]

    trt.ILogger = ILogger
    trt.BuilderFlag = BuilderFlag
    trt.MemoryPoolType = MemoryPoolType
    trt.DeviceType = DeviceType
    trt.Builder = Builder
    trt.OnnxParser = OnnxParser
    if not v11:

        class IInt8EntropyCalibrator2:
            def __init__(self) -> None:
                pass

        trt.IInt8EntropyCalibrator2 = IInt8EntropyCalibrator2
    return trt
