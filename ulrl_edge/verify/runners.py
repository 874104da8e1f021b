"""Run an ONNX classifier with onnxruntime, batched, on the execution provider asked for.

Runtimes by name: ``ort-cpu`` (always there), ``ort-cuda`` (``onnxruntime-gpu`` and a CUDA
runtime) and ``ort-trt`` (additionally TensorRT libraries). A provider that is missing, or
that onnxruntime silently drops when the session starts, is a
:class:`~ulrl_edge.errors.MissingDependency`: a number measured on the CPU must never be
reported as a GPU number. onnxruntime is imported lazily.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ulrl_edge.errors import BadInput, MissingDependency, UnsupportedModel

RUNTIMES: dict[str, tuple[str, ...]] = {
    "ort-cpu": ("CPUExecutionProvider",),
    "ort-cuda": ("CUDAExecutionProvider", "CPUExecutionProvider"),
    "ort-trt": ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"),
}
_HOW_TO_GET = {
    "CUDAExecutionProvider": (
        "install onnxruntime-gpu instead of onnxruntime (pip install 'ulrl-edge[gpu]') "
        "with a matching CUDA and cuDNN, or use --runtime ort-cpu"
    ),
    "TensorrtExecutionProvider": (
        "install onnxruntime-gpu and the TensorRT libraries (pip install tensorrt), "
        "or use --runtime ort-cuda"
    ),
}
_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
}
BatchHook = Callable[[int, int], None]


def _dim(d: Any) -> int | None:
    return d if isinstance(d, int) and not isinstance(d, bool) and d > 0 else None


def _short(err: BaseException) -> str:
    return " ".join(str(err).split())[:300] or type(err).__name__


class OrtRunner:
    """An onnxruntime session over a single-input image classifier.

    Args:
        onnx_path: The model file.
        runtime: ``ort-cpu``, ``ort-cuda`` or ``ort-trt``.
        threads: Intra-op threads (None: onnxruntime's default).

    Raises:
        BadInput: The file is missing or onnxruntime cannot load it.
        UnsupportedModel: Not one input, a non-float input, or ops onnxruntime lacks.
        MissingDependency: The runtime's execution provider is not available.
    """

    def __init__(self, onnx_path: str | Path, runtime: str = "ort-cpu", *, threads=None):
        self.path = Path(onnx_path)
        if runtime not in RUNTIMES:
            raise BadInput(f"unknown runtime {runtime!r}; choose {', '.join(RUNTIMES)}")
        if not self.path.is_file():
            raise BadInput("model file not found", self.path)
        try:
            import onnxruntime as ort
        except ImportError as err:  # pragma: no cover - a declared dependency
            raise MissingDependency(
                f"onnxruntime is not importable ({err}); pip install onnxruntime"
            ) from None
        wanted = RUNTIMES[runtime]
        available = ort.get_available_providers()
        if wanted[0] not in available:
            raise MissingDependency(
                f"runtime {runtime} needs {wanted[0]}, which this onnxruntime lacks "
                f"(it has {', '.join(available)}); {_HOW_TO_GET[wanted[0]]}"
            )
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: the library never prints
        if threads:
            options.intra_op_num_threads = int(threads)
        try:
            session = ort.InferenceSession(str(self.path), options, providers=list(wanted))
        except Exception as err:  # onnxruntime raises its own pybind classes
            kind = type(err).__name__
            # An op no runtime registers (a vendor's custom op) is an unsupported model,
            # not a broken file.
            if kind == "NotImplemented" or "is not a registered function/op" in str(err):
                raise UnsupportedModel(
                    f"onnxruntime cannot run the model: {_short(err)}", self.path
                ) from None
            raise BadInput(f"onnxruntime cannot load the model: {_short(err)}", self.path) from None
        if session.get_providers()[0] != wanted[0]:
            raise MissingDependency(
                f"onnxruntime could not start {wanted[0]} (it fell back to "
                f"{session.get_providers()[0]}); {_HOW_TO_GET.get(wanted[0], '')}"
            )
        inputs = session.get_inputs()
        if len(inputs) != 1:
            names = ", ".join(i.name for i in inputs)
            raise UnsupportedModel(
                f"the model has {len(inputs)} inputs ({names}); expected one image input", self.path
            )
        self.session = session
        self.runtime = runtime
        self.input_name = inputs[0].name
        self.input_shape: tuple = tuple(inputs[0].shape)
        self.input_type: str = inputs[0].type
        output = session.get_outputs()[0]
        self.output_name = output.name
        self.output_shape: tuple = tuple(output.shape)
        self.metadata: dict[str, str] = dict(session.get_modelmeta().custom_metadata_map)
        trailing = self.output_shape[2:]
        if any(_dim(d) not in (None, 1) for d in trailing):
            # A per-pixel or feature-map output: reading its last axis as classes would
            # misreport every label.
            raise UnsupportedModel(
                f"output '{self.output_name}' has shape {list(self.output_shape)}; "
                "expected N×classes (an image classifier)",
                self.path,
            )
        if self.input_type not in _DTYPES:
            raise UnsupportedModel(
                f"input '{self.input_name}' is {self.input_type}; ulrl-edge feeds float "
                "tensors (a model that takes uint8 pixels preprocesses inside the graph, "
                "which cannot be purified); export it with a float32 input",
                self.path,
            )

    @property
    def static_batch(self) -> int | None:
        """The batch size the model is fixed to, or None when the batch axis is dynamic."""
        return _dim(self.input_shape[0]) if self.input_shape else None

    @property
    def num_classes(self) -> int | None:
        """K from the output shape when static (else known only after a run)."""
        return _dim(self.output_shape[1]) if len(self.output_shape) >= 2 else None

    def run(
        self,
        inputs: np.ndarray,
        *,
        batch_size: int = 64,
        transform: Callable[[np.ndarray], np.ndarray] | None = None,
        on_batch: BatchHook | None = None,
    ) -> np.ndarray:
        """Outputs for every row of ``inputs``, as float32 N×K.

        Args:
            inputs: The model input (or, with ``transform``, what it is made from), N first.
            batch_size: Rows per call; a model with a static batch size B runs B at a time
                (the last batch padded, its padding dropped).
            transform: Applied to each batch before the run (e.g. preprocessing), so a
                large set is never converted all at once.
            on_batch: Called with (rows done, rows total) after each batch.
        """
        n = len(inputs)
        step = self.static_batch or max(1, int(batch_size))
        dtype = _DTYPES[self.input_type]
        outputs: list[np.ndarray] = []
        for start in range(0, n, step):
            batch = inputs[start : start + step]
            batch = transform(batch) if transform is not None else batch
            rows = len(batch)
            if self.static_batch and rows < step:  # pad to the fixed batch size
                pad = np.zeros((step - rows, *batch.shape[1:]), dtype=batch.dtype)
                batch = np.concatenate([batch, pad])
            out = self._run_batch(np.ascontiguousarray(batch, dtype=dtype))
            outputs.append(self._logits(out)[:rows])
            if on_batch is not None:
                on_batch(min(start + step, n), n)
        if not outputs:
            return np.zeros((0, self.num_classes or 0), dtype=np.float32)
        return np.concatenate(outputs).astype(np.float32, copy=False)

    def _run_batch(self, batch: np.ndarray) -> np.ndarray:
        """One session run; a graph that declares a dynamic batch but freezes it inside (a
        Paddle Reshape to [1, K]) fails on a batch, so such a batch is run row by row."""
        try:
            return np.asarray(self.session.run([self.output_name], {self.input_name: batch})[0])
        except Exception as err:  # onnxruntime's pybind errors
            if len(batch) > 1 and not self.static_batch:
                try:
                    rows = [self._run_batch(batch[i : i + 1]) for i in range(len(batch))]
                    return np.concatenate(rows)
                except BadInput:
                    pass
            raise BadInput(
                f"onnxruntime failed on an input of shape {list(batch.shape)}: {_short(err)}",
                self.path,
            ) from None

    def _logits(self, out: np.ndarray) -> np.ndarray:
        """N×K from N×K, N×K×1×1 (conv heads) or similar; argmax is all that is used."""
        if out.ndim > 2 and all(d == 1 for d in out.shape[2:]):
            out = out.reshape(out.shape[0], out.shape[1])
        if out.ndim != 2:
            raise UnsupportedModel(
                f"output '{self.output_name}' has shape {list(out.shape)}; expected N×classes",
                self.path,
            )
        return out


ENGINE_RUNTIME = "tensorrt"  # a serialized TensorRT engine, run without onnxruntime
RUNTIME_CHOICES: tuple[str, ...] = (*RUNTIMES, ENGINE_RUNTIME)


def open_runner(path: str | Path, runtime: str = "ort-cpu", **kwargs: Any) -> OrtRunner:
    """An onnxruntime runner for ``ort-*`` runtimes, an engine runner for ``tensorrt``."""
    if runtime == ENGINE_RUNTIME:
        from ulrl_edge.verify.engine_runner import EngineRunner

        return EngineRunner(path, **kwargs)
    return OrtRunner(path, runtime, **kwargs)


def predict(
    onnx_path: str | Path | OrtRunner,
    model_input: np.ndarray,
    *,
    runtime: str = "ort-cpu",
    batch_size: int = 64,
) -> np.ndarray:
    """The model's outputs (logits or probabilities) for a ready model input, float32 N×K.

    Args:
        onnx_path: The model file, or an :class:`OrtRunner` already open.
        model_input: The tensor the model takes (already preprocessed, its layout).
        runtime: ``ort-cpu``, ``ort-cuda``, ``ort-trt`` or ``tensorrt`` (an engine file).
        batch_size: Rows per onnxruntime call.
    """
    runner = onnx_path if isinstance(onnx_path, OrtRunner) else open_runner(onnx_path, runtime)
    return runner.run(np.asarray(model_input), batch_size=batch_size)
