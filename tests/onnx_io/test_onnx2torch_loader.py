"""onnx2torch is imported with torchvision deferred until one of its functions is called."""

from __future__ import annotations

import sys

import pytest

from ulrl_edge.onnx_io.onnx2torch_loader import (
    deferred_imports,
    import_deferring,
    import_onnx2torch,
)


@pytest.fixture
def slow_package(tmp_path, monkeypatch):
    """A package ``slowvision`` with ``ops.double``, and a module that imports it as
    onnx2torch imports torchvision (``import slowvision``, ``from slowvision.ops import``)."""
    package = tmp_path / "slowvision"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "ops.py").write_text("def double(x):\n    return 2 * x\n")
    (tmp_path / "slow_user.py").write_text(
        "import slowvision\nfrom slowvision.ops import double\n\n"
        "def via_package(x):\n    return slowvision.ops.double(x)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    for name in ("slowvision", "slowvision.ops", "slow_user", "needy_user"):
        sys.modules.pop(name, None)


def test_stand_ins_import_the_real_module_at_the_first_call(slow_package):
    with deferred_imports("slowvision", ("ops",)):
        import slow_user
    assert "slowvision" not in sys.modules  # not imported, and no stand-in left behind
    assert slow_user.double(21) == 42  # the first call imports the real module
    assert sys.modules["slowvision.ops"].__file__.endswith("ops.py")
    assert slow_user.via_package(4) == 8
    assert slow_user.double.__name__ == "double"


def test_an_imported_package_is_left_as_it_is(slow_package):
    import slowvision.ops

    with deferred_imports("slowvision", ("ops",)):
        import slow_user
    assert slow_user.double is slowvision.ops.double


def test_a_module_that_needs_more_is_imported_plainly(slow_package, tmp_path):
    # A newer onnx2torch might read torchvision.__version__ while importing.
    (tmp_path / "needy_user.py").write_text(
        "import slowvision\nfrom slowvision.ops import double\nVERSION = slowvision.__name__\n"
        "assert slowvision.__file__\n"
    )
    import_deferring("needy_user", "slowvision", ("ops",))
    import needy_user

    assert needy_user.VERSION == "slowvision" and needy_user.double(2) == 4
    assert sys.modules["slowvision"].__file__.endswith("__init__.py")  # the real one


def test_stand_ins_have_no_private_attributes():
    # inspect and pickle probe modules for __file__ and the like; a stand-in must say no.
    with deferred_imports("not_a_real_package_here", ("ops",)):
        import not_a_real_package_here as stand_in

        assert not hasattr(stand_in, "__file__") and not hasattr(stand_in.ops, "__path__")
    assert "not_a_real_package_here" not in sys.modules


def test_onnx2torch_comes_without_torchvision():
    # No test imports torchvision, so in any worker onnx2torch came in through the loader.
    import_onnx2torch()
    assert "onnx2torch" in sys.modules and "torchvision" not in sys.modules
    stand_in = sys.modules["onnx2torch.node_converters.nms"].torchvision
    assert not hasattr(stand_in, "__file__")  # until an NMS node is converted
