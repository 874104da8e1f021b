"""Fashion-MNIST from local idx files (Debian package ``dataset-fashion-mnist``).

Used by the sample-model script, the benchmarks and optional tests; nothing is downloaded:
install the files with ``apt-get install dataset-fashion-mnist``.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from ulrl_edge.data.images import ImageSet
from ulrl_edge.errors import MissingDependency

DEFAULT_ROOT = Path("/usr/share/datasets/fashion-mnist")
CLASS_NAMES = (
    "t-shirt_top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle_boot",
)


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as handle:
        data = handle.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_fashion_mnist(split: str = "train", root: Path = DEFAULT_ROOT) -> ImageSet:
    """The ``train`` (60k) or ``test`` (10k) split as an ImageSet (28×28×1, [0, 1]).

    Raises:
        MissingDependency: the idx files are not installed.
    """
    prefix = "train" if split == "train" else "t10k"
    images = Path(root) / f"{prefix}-images-idx3-ubyte.gz"
    labels = Path(root) / f"{prefix}-labels-idx1-ubyte.gz"
    if not images.is_file() or not labels.is_file():
        raise MissingDependency(
            f"Fashion-MNIST not found in {root}; install it with "
            "'apt-get install dataset-fashion-mnist'"
        )
    x = _read_idx(images).astype(np.float32)[..., None] / 255.0
    y = _read_idx(labels).astype(np.int64)
    return ImageSet(x, y, CLASS_NAMES, Path(root))
