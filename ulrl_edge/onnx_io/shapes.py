"""Concrete input shapes, seeded probe inputs and a layout guess for a loaded model.

Dynamic axes are filled the same way everywhere (export dummies, parity probes, inspect):
axis 0 gets the batch size, other unknown axes get the caller's ``size`` (H, W) in order;
without ``size``, an unknown non-batch axis is refused with a message that says how to fix it.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from ulrl_edge.errors import BadInput
from ulrl_edge.onnx_io.load import LoadedModel, TensorInfo

LayoutGuess = Literal["nchw", "nhwc", "unknown"]


def guess_layout(info: TensorInfo) -> LayoutGuess:
    """``nchw`` when axis 1 holds 1 or 3 channels, ``nhwc`` when axis 3 does; else unknown."""
    shape = info.shape
    if len(shape) != 4:
        return "unknown"
    c1 = shape[1] if isinstance(shape[1], int) else None
    c3 = shape[3] if isinstance(shape[3], int) else None
    if c1 in (1, 3) and c3 not in (1, 3):
        return "nchw"
    if c3 in (1, 3) and c1 not in (1, 3):
        return "nhwc"
    if c1 in (1, 3) and c3 in (1, 3):  # e.g. 1×3×3×3: prefer the common layout
        return "nchw"
    return "unknown"


def spatial_axes(info: TensorInfo) -> tuple[int, int] | None:
    """The (H, W) axes of a 4-D image input, from the layout guess."""
    layout = guess_layout(info)
    if layout == "nchw":
        return (2, 3)
    if layout == "nhwc":
        return (1, 2)
    return None


def is_dynamic(dim: int | str | None) -> bool:
    return not isinstance(dim, int)


def concrete_shape(
    info: TensorInfo, batch: int, size: tuple[int, int] | None = None, path=None
) -> tuple[int, ...]:
    """One input's shape with every dynamic axis filled.

    Args:
        info: The input.
        batch: Size for axis 0 when it is dynamic.
        size: (H, W) for dynamic spatial axes.
        path: The model file, for the error message.

    Raises:
        BadInput: A dynamic axis other than the batch, and no ``size`` to fill it.
    """
    shape = list(info.shape)
    unknown = [axis for axis, dim in enumerate(shape) if is_dynamic(dim) and axis != 0]
    if unknown:
        axes = spatial_axes(info) or tuple(unknown)
        if size is None or len(axes) != 2 or not set(unknown) <= set(axes):
            raise BadInput(
                f"input {info.name!r} has unknown sizes at axes {unknown} "
                f"(shape {list(info.shape)}); give the image size, e.g. --size 48 192",
                path,
            )
        for axis, value in zip(axes, size, strict=True):
            if axis in unknown:
                shape[axis] = int(value)
    if shape and is_dynamic(shape[0]):
        shape[0] = int(batch)
    return tuple(int(d) for d in shape)


def concrete_shapes(
    model: LoadedModel, batch: int, size: tuple[int, int] | None = None
) -> dict[str, tuple[int, ...]]:
    """Every input's concrete shape (see :func:`concrete_shape`)."""
    return {t.name: concrete_shape(t, batch, size, model.path) for t in model.inputs}


def batch_is_dynamic(model: LoadedModel) -> bool:
    """Whether the first input's axis 0 is dynamic."""
    return bool(model.inputs and model.inputs[0].shape) and is_dynamic(model.inputs[0].shape[0])


def random_inputs(
    model: LoadedModel,
    batch: int,
    seed: int = 0,
    size: tuple[int, int] | None = None,
) -> dict[str, np.ndarray]:
    """Seeded probe inputs: floats uniform in [0, 1), integers in [0, 255], bools random.

    Args:
        model: The model whose inputs to fill.
        batch: Size of dynamic axis 0 (static batches are kept).
        seed: Seed of NumPy's generator.
        size: (H, W) for dynamic spatial axes.
    """
    rng = np.random.default_rng(seed)
    shapes = concrete_shapes(model, batch, size)
    arrays: dict[str, np.ndarray] = {}
    for info in model.inputs:
        shape = shapes[info.name]
        dtype = np.dtype(info.dtype) if info.dtype in np.sctypeDict else np.dtype("float32")
        if dtype.kind == "f":
            arrays[info.name] = rng.random(shape, dtype=np.float64).astype(dtype)
        elif dtype.kind in "iu":
            arrays[info.name] = rng.integers(0, 256, size=shape).astype(dtype)
        elif dtype.kind == "b":
            arrays[info.name] = rng.random(shape) < 0.5
        else:
            raise BadInput(f"input {info.name!r} has unsupported dtype {info.dtype}", model.path)
    return arrays
