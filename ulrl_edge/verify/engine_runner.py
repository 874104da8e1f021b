"""Run a serialized TensorRT engine directly (``--runtime tensorrt``), without onnxruntime.

:class:`EngineRunner` offers what :class:`~ulrl_edge.verify.runners.OrtRunner` offers
(``run``, ``static_batch``, ``num_classes``, ``metadata``), so ``evaluate`` and the parity
checks take either. It reuses OrtRunner's batching (padding of fixed batches, transforms,
progress) and replaces only the session: an engine built for a dynamic batch is run in chunks
no larger than its profile's maximum. ``tensorrt`` and CUDA are needed only when a runner is
created. Engines are tied to the GPU and TensorRT version that built them; when one does not
load, the error says which ones built it (from the ``.json`` sidecar) and how to rebuild.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ulrl_edge.data.spec import METADATA_KEY
from ulrl_edge.errors import BadInput, UnsupportedModel
from ulrl_edge.verify.runners import OrtRunner

_TENSOR_TYPES = {"float32": "tensor(float)", "float16": "tensor(float16)"}


class EngineRunner(OrtRunner):
    """A TensorRT engine over a single-input image classifier, on CUDA device ``device``.

    Args:
        engine_path: The ``.engine`` file (its ``.json`` sidecar is read when present).
        runtime: Must be ``tensorrt`` (accepted for symmetry with OrtRunner).
        threads: Ignored (onnxruntime's option).
        device: CUDA device index.
        memory: GPU buffers through ``torch``, ``cudart`` (libcudart only, e.g. a Jetson
            whose PyTorch has no CUDA) or ``auto`` (torch when it sees the GPU).

    Raises:
        BadInput: The file is missing, or TensorRT cannot load it here.
        UnsupportedModel: Not one input, or a non-float input.
        MissingDependency: No TensorRT, or no usable CUDA device.
    """

    def __init__(
        self,
        engine_path: str | Path,
        runtime: str = "tensorrt",
        *,
        threads: int | None = None,
        device: int = 0,
        memory: str = "auto",
    ):
        # No OrtRunner.__init__: there is no onnxruntime session, only the same interface.
        from ulrl_edge.export.cuda_memory import open_cuda_memory
        from ulrl_edge.export.engine_meta import read_sidecar
        from ulrl_edge.export.trt_env import collecting_logger, import_tensorrt

        self.path = Path(engine_path)
        self.runtime = "tensorrt"
        if runtime != "tensorrt":
            raise BadInput(f"EngineRunner runs TensorRT engines, not runtime {runtime!r}")
        if not self.path.is_file():
            raise BadInput("engine file not found", self.path)
        self.sidecar = read_sidecar(self.path)
        trt = import_tensorrt("running a TensorRT engine")
        self._memory = open_cuda_memory(memory, device)  # sets the CUDA device first
        self._trt = trt
        self._logger = collecting_logger(trt)
        self._runtime = trt.Runtime(self._logger)  # must outlive the engine it makes
        engine = self._runtime.deserialize_cuda_engine(self.path.read_bytes())
        if engine is None:
            raise BadInput(self._mismatch(), self.path)
        self._engine = engine
        self._context = engine.create_execution_context()
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self._outputs = [n for n in names if n not in inputs]
        if len(inputs) != 1 or not self._outputs:
            raise UnsupportedModel(
                f"the engine has {len(inputs)} inputs and {len(self._outputs)} outputs; "
                "expected one image input",
                self.path,
            )
        self.input_name = inputs[0]
        wanted = self.sidecar.get("output")
        self.output_name = wanted if wanted in self._outputs else self._outputs[0]
        self.input_shape = tuple(int(d) for d in engine.get_tensor_shape(self.input_name))
        self.output_shape = tuple(int(d) for d in engine.get_tensor_shape(self.output_name))
        dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(self.input_name))).name
        if dtype not in _TENSOR_TYPES:
            raise UnsupportedModel(
                f"engine input '{self.input_name}' is {dtype}; ulrl-edge feeds float tensors",
                self.path,
            )
        self.input_type = _TENSOR_TYPES[dtype]
        self.min_batch, self.max_batch = self._batch_limits()
        preprocess = self.sidecar.get("preprocess")
        self.metadata = {METADATA_KEY: json.dumps(preprocess)} if preprocess else {}

    def _mismatch(self) -> str:
        from ulrl_edge.export.trt_env import gpu_description

        built = self.sidecar
        here = gpu_description().get("name") or "this GPU"
        origin = (
            f"it was built with TensorRT {built.get('tensorrt_version', '?')} on "
            f"{(built.get('gpu') or {}).get('name') or 'an unknown GPU'}"
            if built
            else "it has no .json sidecar saying what built it"
        )
        return (
            f"TensorRT cannot load this engine ({self._logger.last_error()}); an engine runs "
            f"only on the GPU model and TensorRT version that built it: {origin}, this is "
            f"TensorRT {self._trt.__version__} on {here}; rebuild it here from the ONNX file "
            "(ulrl-edge export MODEL --format tensorrt, or the bundle's build_engine.sh)"
        )

    def _batch_limits(self) -> tuple[int, int]:
        fixed = self.input_shape[0] if self.input_shape else 1
        if fixed > 0:
            return fixed, fixed
        low, _opt, high = self._engine.get_tensor_profile_shape(self.input_name, 0)
        return int(low[0]), int(high[0])

    def _run_batch(self, batch: np.ndarray) -> np.ndarray:
        """Outputs for ``batch``, in chunks the profile allows (small ones padded to its min)."""
        parts = []
        for start in range(0, len(batch), self.max_batch):
            chunk = batch[start : start + self.max_batch]
            rows = len(chunk)
            if rows < self.min_batch:
                pad = np.zeros((self.min_batch - rows, *chunk.shape[1:]), dtype=chunk.dtype)
                chunk = np.concatenate([chunk, pad])
            parts.append(self._run_chunk(np.ascontiguousarray(chunk))[:rows])
        return np.concatenate(parts) if parts else np.zeros((0,), np.float32)

    def _run_chunk(self, chunk: np.ndarray) -> np.ndarray:
        ctx, memory = self._context, self._memory
        if not ctx.set_input_shape(self.input_name, tuple(chunk.shape)):
            raise BadInput(
                f"the engine does not take an input of shape {list(chunk.shape)} "
                f"(its profile: batch {self.min_batch} to {self.max_batch})",
                self.path,
            )
        x = memory.upload(chunk)
        ctx.set_tensor_address(self.input_name, x.ptr)
        buffers = {}
        for name in self._outputs:
            shape = tuple(int(d) for d in ctx.get_tensor_shape(name))
            dtype = self._trt.nptype(self._engine.get_tensor_dtype(name))
            buffers[name] = memory.empty(shape, dtype)
            ctx.set_tensor_address(name, buffers[name].ptr)
        ok = ctx.execute_async_v3(memory.stream)
        memory.synchronize()
        if not ok:
            raise BadInput(
                f"TensorRT failed on an input of shape {list(chunk.shape)}: "
                f"{self._logger.last_error()}",
                self.path,
            )
        return memory.download(buffers[self.output_name]).astype(np.float32)
