"""Import onnx2torch without paying for torchvision at start-up.

onnx2torch imports torchvision when it is imported, for two converters only
(NonMaxSuppression and RoiAlign, which image classifiers rarely hold). On the project's
2-core development machine ``import onnx2torch`` took 16 s after ``import torch``, and
0.5-1.3 s with torchvision deferred; a one-epoch ``purify`` in a fresh process went from
49.6 s to 37.0 s (part of the 16 s, torch._dynamo, is imported later by torch.optim anyway).
While onnx2torch is imported, ``torchvision`` and ``torchvision.ops`` are stand-ins whose
functions import the real module on their first call; the stand-ins leave ``sys.modules``
as soon as onnx2torch is in."""

from __future__ import annotations

import functools
import importlib
import sys
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


def import_onnx2torch() -> None:
    """Import onnx2torch once, with torchvision deferred where that is possible."""
    import_deferring("onnx2torch", "torchvision", ("ops",))


def import_deferring(module: str, package: str, submodules: tuple[str, ...] = ()) -> None:
    """Import ``module`` (once) with ``package`` stood in for (see :func:`deferred_imports`);
    if ``module`` needs more of ``package`` than stand-ins give while it is imported, it is
    imported plainly instead."""
    if module in sys.modules:
        return
    try:
        with deferred_imports(package, submodules):
            importlib.import_module(module)
    except (ImportError, AttributeError):
        for name in [n for n in sys.modules if n.split(".")[0] == module.split(".")[0]]:
            del sys.modules[name]
        importlib.import_module(module)


@contextmanager
def deferred_imports(package: str, submodules: tuple[str, ...] = ()) -> Iterator[None]:
    """While open, ``import package`` and ``from package.sub import name`` give stand-ins:
    each public name is a function that imports the real module and calls its namesake.

    Nothing is stood in for if ``package`` is already imported. On exit the stand-ins leave
    ``sys.modules``, so a later import gets the real package; modules imported meanwhile
    keep the stand-ins they took.
    """
    if package in sys.modules:
        yield
        return
    names = [package, *(f"{package}.{sub}" for sub in submodules)]
    stand_ins = {name: _stand_in_module(name) for name in names}
    for sub in submodules:
        setattr(stand_ins[package], sub, stand_ins[f"{package}.{sub}"])
    sys.modules.update(stand_ins)
    try:
        yield
    finally:
        for name, module in stand_ins.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]


def _stand_in_module(name: str) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__getattr__ = functools.partial(_deferred_attribute, name)  # PEP 562
    return module


def _deferred_attribute(module_name: str, attribute: str) -> Callable[..., Any]:
    if attribute.startswith("_"):  # __file__, __path__, ...: a stand-in has none
        raise AttributeError(attribute)

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module_name), attribute)(*args, **kwargs)

    call.__name__ = call.__qualname__ = attribute
    return call
