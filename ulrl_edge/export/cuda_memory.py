"""GPU buffers and a CUDA stream for TensorRT, through PyTorch or straight through libcudart.

TensorRT's Python API takes raw device pointers. PyTorch's CUDA tensors are the easy source
on x86; on a Jetson the usual PyTorch from PyPI has no CUDA, but JetPack always has
``libcudart``, so a few of its functions are called through ``ctypes`` (as Polygraphy does).
``kind="auto"`` takes PyTorch when it sees a GPU, else libcudart.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np

from ulrl_edge.errors import MissingDependency

KINDS = ("auto", "torch", "cudart")
_HOST_TO_DEVICE, _DEVICE_TO_HOST = 1, 2
_CUDART_NAMES = ("libcudart.so", "libcudart.so.13", "libcudart.so.12", "libcudart.so.11.0")


@dataclass
class DeviceArray:
    """A device buffer: its address for TensorRT, its shape and dtype for the way back."""

    ptr: int
    shape: tuple[int, ...]
    dtype: np.dtype
    keep: Any = None  # what owns the memory (a torch tensor, or a finalizer)


class TorchMemory:
    """Buffers as PyTorch CUDA tensors on ``device``, work on its current stream."""

    kind = "torch"

    def __init__(self, device: int = 0):
        import torch

        if not torch.cuda.is_available():
            raise MissingDependency("PyTorch sees no CUDA device")
        self._torch = torch
        self._device = torch.device("cuda", device)
        torch.cuda.set_device(self._device)  # TensorRT works on the current device
        self._stream = torch.cuda.current_stream(self._device)
        self.stream = int(self._stream.cuda_stream)

    def upload(self, host: np.ndarray) -> DeviceArray:
        tensor = self._torch.from_numpy(np.ascontiguousarray(host)).to(self._device)
        return DeviceArray(int(tensor.data_ptr()), tuple(host.shape), host.dtype, tensor)

    def empty(self, shape: tuple[int, ...], dtype: Any) -> DeviceArray:
        like = self._torch.from_numpy(np.empty(0, dtype=dtype)).dtype
        tensor = self._torch.empty(shape, dtype=like, device=self._device)
        return DeviceArray(int(tensor.data_ptr()), tuple(shape), np.dtype(dtype), tensor)

    def download(self, array: DeviceArray) -> np.ndarray:
        return array.keep.cpu().numpy()

    def synchronize(self) -> None:
        self._stream.synchronize()


def load_cudart() -> ctypes.CDLL:
    """The CUDA runtime library, by the names JetPack, CUDA toolkits and pip wheels use.

    Raises:
        MissingDependency: No libcudart can be loaded.
    """
    names = [ctypes.util.find_library("cudart"), *_CUDART_NAMES]
    for name in filter(None, names):
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        lib.cudaGetErrorString.restype = ctypes.c_char_p
        return lib
    raise MissingDependency(
        "no CUDA runtime library (libcudart) found; on a Jetson it comes with JetPack, on x86 "
        "with the CUDA toolkit or a CUDA build of PyTorch"
    )


class CudartMemory:
    """Buffers from ``cudaMalloc``, work on a stream of our own (needs only libcudart)."""

    kind = "cudart"

    def __init__(self, device: int = 0):
        self._lib = load_cudart()
        self._check(self._lib.cudaSetDevice(ctypes.c_int(device)), "cudaSetDevice")
        handle = ctypes.c_void_p()
        self._check(self._lib.cudaStreamCreate(ctypes.byref(handle)), "cudaStreamCreate")
        self.stream = int(handle.value or 0)
        weakref.finalize(self, self._lib.cudaStreamDestroy, ctypes.c_void_p(self.stream))

    def _check(self, code: int, call: str) -> None:
        if code != 0:
            text = self._lib.cudaGetErrorString(code).decode(errors="replace")
            raise MissingDependency(f"CUDA cannot be used here: {call} failed ({code}: {text})")

    def empty(self, shape: tuple[int, ...], dtype: Any) -> DeviceArray:
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        ptr = ctypes.c_void_p()
        if nbytes:
            self._check(
                self._lib.cudaMalloc(ctypes.byref(ptr), ctypes.c_size_t(nbytes)), "cudaMalloc"
            )
        array = DeviceArray(int(ptr.value or 0), tuple(shape), dtype)
        if array.ptr:
            array.keep = weakref.finalize(array, self._lib.cudaFree, ctypes.c_void_p(array.ptr))
        return array

    def upload(self, host: np.ndarray) -> DeviceArray:
        host = np.ascontiguousarray(host)
        array = self.empty(tuple(host.shape), host.dtype)
        if host.nbytes:
            code = self._lib.cudaMemcpy(
                ctypes.c_void_p(array.ptr),
                ctypes.c_void_p(host.ctypes.data),
                ctypes.c_size_t(host.nbytes),
                ctypes.c_int(_HOST_TO_DEVICE),
            )
            self._check(code, "cudaMemcpy")
        return array

    def download(self, array: DeviceArray) -> np.ndarray:
        host = np.empty(array.shape, dtype=array.dtype)
        if host.nbytes:
            code = self._lib.cudaMemcpy(
                ctypes.c_void_p(host.ctypes.data),
                ctypes.c_void_p(array.ptr),
                ctypes.c_size_t(host.nbytes),
                ctypes.c_int(_DEVICE_TO_HOST),
            )
            self._check(code, "cudaMemcpy")
        return host

    def synchronize(self) -> None:
        self._check(self._lib.cudaStreamSynchronize(ctypes.c_void_p(self.stream)), "sync")


def open_cuda_memory(kind: str = "auto", device: int = 0) -> TorchMemory | CudartMemory:
    """GPU memory through PyTorch (``torch``), libcudart (``cudart``) or whichever works.

    Raises:
        MissingDependency: Neither gives a usable CUDA device.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown CUDA memory kind {kind!r}; choose {', '.join(KINDS)}")
    if kind == "torch":
        return TorchMemory(device)
    if kind == "cudart":
        return CudartMemory(device)
    try:
        return TorchMemory(device)
    except MissingDependency:
        return CudartMemory(device)
