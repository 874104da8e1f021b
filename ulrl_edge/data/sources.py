"""Clean labelled images from a folder of class subfolders or an ``.npz`` file.

Folder: ``ROOT/<class>/<image>`` where ``<class>`` is a class index (``0``, ``1``, …) or, when
``ROOT/classes.txt`` exists (one class name a line, line *i* = class *i*), a name listed there.
Images are PNG, JPEG or BMP; hidden files are skipped, any other file or nested folder in a
class folder is an error (silently skipping it would lose data).

``.npz``: ``x`` as N×C×H×W, N×H×W×C or N×H×W (gray), uint8, uint16 or float in [0, 1];
``y`` integer labels. Optional ``class_names`` (strings) and ``channels`` (``"rgb"``, the
default for 3 channels, or ``"bgr"``). Loaded with ``allow_pickle=False``.

Pixels are converted to the spec's channels (see :mod:`ulrl_edge.data.pixels` for the rules).
Images must already have the model's size unless ``resize=True`` (the user passed
``--size``): a silent resize could hide a wrong dataset.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np

from ulrl_edge.config import DEFAULT_LIMITS, Limits
from ulrl_edge.data.images import ImageSet
from ulrl_edge.data.pixels import (
    IMAGE_SUFFIXES,
    convert_channels,
    decode_image,
    resize_image,
    resize_images,
)
from ulrl_edge.data.preprocess import PreprocessSpec
from ulrl_edge.errors import BadInput

_SKIPPED_NAMES = {"thumbs.db", "desktop.ini"}
_FOLDER_HINT = "expected class subfolders 0/, 1/, … (or names listed in classes.txt)"


def load_images(
    path: str | Path,
    spec: PreprocessSpec,
    *,
    resize: bool = False,
    limits: Limits = DEFAULT_LIMITS,
) -> ImageSet:
    """Load a folder or ``.npz`` as canonical images for a model with this spec.

    Args:
        path: A folder of class subfolders or an ``.npz`` file.
        spec: The resolved spec; its ``channels`` and ``size`` are what the images become.
        resize: Resize images whose size differs from ``spec.size`` (the user asked with
            ``--size``); otherwise a different size is an error.
        limits: Bounds on decoded image size and total elements.

    Returns:
        float32 N×H×W×C images in [0, 1] with int64 labels.

    Raises:
        BadInput: Naming the file or folder and the problem.
    """
    path = Path(path)
    if path.is_dir():
        return _load_folder(path, spec, resize, limits)
    if not path.exists():
        raise BadInput("no such file or folder", path)
    if path.suffix.lower() == ".npz":
        return _load_npz(path, spec, resize, limits)
    raise BadInput(f"not a folder or an .npz file; {_FOLDER_HINT}", path)


def check_labels(images: ImageSet, num_classes: int) -> None:
    """Raise BadInput when a label is not one of the model's ``num_classes`` classes."""
    unknown = sorted({int(v) for v in np.unique(images.y) if not 0 <= v < num_classes})
    if unknown:
        shown = ", ".join(str(v) for v in unknown[:10]) + (" …" if len(unknown) > 10 else "")
        raise BadInput(
            f"labels {shown} are outside the model's {num_classes} classes "
            f"(0 to {num_classes - 1})",
            images.source,
        )


def _size_error(file: Path, got: tuple[int, ...], spec: PreprocessSpec) -> BadInput:
    h, w = spec.size
    return BadInput(
        f"image is {got[0]}×{got[1]} but the model takes {h}×{w}; pass --size {h} {w} to resize",
        file,
    )


def _read_classes_txt(file: Path) -> list[str]:
    try:
        names = [line.strip() for line in file.read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as err:
        raise BadInput(f"cannot read class names: {err}", file) from None
    names = [n for n in names if n]
    if not names:
        raise BadInput("lists no class names", file)
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise BadInput(f"lists class names more than once: {', '.join(dupes)}", file)
    return names


def _class_index(folder: Path, names: list[str] | None) -> int:
    name = folder.name
    if names is not None and name in names:
        return names.index(name)
    if name.isdecimal() and name.isascii():
        index = int(name)
        if names is not None and index >= len(names):
            raise BadInput(f"class {index} is beyond the {len(names)} names in classes.txt", folder)
        return index
    if names is not None:
        raise BadInput("this class folder is not listed in classes.txt", folder)
    raise BadInput(
        "folder name is not a class index; name class folders 0, 1, … "
        "or list the class names in classes.txt",
        folder,
    )


def _load_folder(root: Path, spec: PreprocessSpec, resize: bool, limits: Limits) -> ImageSet:
    classes_txt = root / "classes.txt"
    names = _read_classes_txt(classes_txt) if classes_txt.is_file() else None
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        loose = [p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
        problem = "images must be in class subfolders" if loose else "no images found"
        raise BadInput(f"{problem}; {_FOLDER_HINT}", root)

    by_index: dict[int, Path] = {}
    for folder in folders:
        index = _class_index(folder, names)
        if index in by_index:
            raise BadInput(f"class {index} also comes from folder {by_index[index].name}", folder)
        by_index[index] = folder

    images: list[np.ndarray] = []
    labels: list[int] = []
    for index in sorted(by_index):
        for file in sorted(by_index[index].iterdir()):
            if file.name.startswith(".") or file.name.lower() in _SKIPPED_NAMES:
                continue
            if file.is_dir():
                raise BadInput("nested folder; put images directly in the class folders", file)
            if file.suffix.lower() not in IMAGE_SUFFIXES:
                raise BadInput("not a PNG, JPEG or BMP image (by its extension)", file)
            pixels, space = decode_image(file, limits)
            if pixels.shape[:2] != tuple(spec.size):
                if not resize:
                    raise _size_error(file, pixels.shape, spec)
                pixels = resize_image(pixels, spec.size)
            images.append(convert_channels(pixels, space, spec.channels))
            labels.append(index)
    if not images:
        raise BadInput(f"no images found in the class folders; {_FOLDER_HINT}", root)

    count = max(by_index) + 1 if names is None else len(names)
    class_names = tuple(names) if names is not None else tuple(str(i) for i in range(count))
    x = np.stack(images).astype(np.float32, copy=False)
    return ImageSet(x, np.asarray(labels, dtype=np.int64), class_names, root)


def _npz_layout(x: np.ndarray, spec: PreprocessSpec, path: Path) -> np.ndarray:
    """N×C×H×W, N×H×W×C or N×H×W → N×H×W×C."""
    if x.ndim == 3:
        return x[..., None]
    if x.ndim != 4:
        raise BadInput(f"'x' has shape {x.shape}; expected N×C×H×W, N×H×W×C or N×H×W", path)
    first, last = x.shape[1] in (1, 3, 4), x.shape[3] in (1, 3, 4)
    if first and last:  # tiny images: let the model's size decide
        first = tuple(x.shape[2:4]) == tuple(spec.size) and tuple(x.shape[1:3]) != spec.size
    if first:
        return x.transpose(0, 2, 3, 1)
    if last:
        return x
    raise BadInput(f"'x' has shape {x.shape}: no axis of 1, 3 or 4 channels", path)


def _npz_pixels(x: np.ndarray, path: Path) -> np.ndarray:
    """uint8 / uint16 / float in [0, 1] → float32 in [0, 1]."""
    if x.dtype == np.uint8:
        return x.astype(np.float32) / np.float32(255.0)
    if x.dtype == np.uint16:
        return (x.astype(np.float64) / 65535.0).astype(np.float32)
    if x.dtype.kind != "f":
        raise BadInput(f"'x' has dtype {x.dtype}; store uint8 or float in [0, 1]", path)
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise BadInput("'x' holds NaN or infinite values", path)
    low, high = (float(x.min()), float(x.max())) if x.size else (0.0, 0.0)
    if low < 0.0 or high > 1.0:
        raise BadInput(f"'x' values span {low:g} to {high:g}; store uint8 or float in [0, 1]", path)
    return x


def _npz_labels(y: np.ndarray, n: int, path: Path) -> np.ndarray:
    y = y.reshape(-1) if y.ndim == 2 and y.shape[1] == 1 else y
    if y.ndim != 1 or len(y) != n:
        raise BadInput(f"'y' has shape {y.shape}; expected {n} labels, one per image", path)
    if y.dtype.kind == "f" and np.isfinite(y).all() and (y == np.round(y)).all():
        y = y.astype(np.int64)
    if y.dtype.kind not in "iu":
        raise BadInput(f"'y' has dtype {y.dtype}; expected integer class indices", path)
    if n and y.min() < 0:
        raise BadInput(f"'y' holds negative labels (e.g. {int(y.min())})", path)
    return y.astype(np.int64)


def _npz_strings(archive, key: str, path: Path) -> list[str] | None:
    if key not in archive.files:
        return None
    value = archive[key]
    if value.dtype.kind not in "US":
        raise BadInput(f"'{key}' must hold strings, got dtype {value.dtype}", path)
    return [str(v) for v in np.atleast_1d(value).tolist()]


def _check_npz_sizes(path: Path, limits: Limits) -> None:
    """Read each member's .npy header and refuse declared sizes over the limit, before numpy
    allocates the array (a crafted header can declare terabytes)."""
    if not zipfile.is_zipfile(path):
        raise BadInput(
            "cannot read .npz: not an .npz archive (no zip directory found: another format, "
            "or truncated)",
            path,
        )
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if not info.filename.endswith(".npy"):
                continue
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(member)
                else:
                    shape, _, dtype = np.lib.format.read_array_header_2_0(member)
            elements = math.prod(shape)
            name = info.filename[:-4]
            if elements > limits.max_tensor_elements:
                raise BadInput(
                    f"'{name}' declares {elements} elements, above the "
                    f"{limits.max_tensor_elements} limit",
                    path,
                )
            if elements * dtype.itemsize > info.file_size:
                raise BadInput(
                    f"'{name}' declares shape {shape} but the archive holds only "
                    f"{info.file_size} bytes for it (truncated or forged)",
                    path,
                )


def _load_npz(path: Path, spec: PreprocessSpec, resize: bool, limits: Limits) -> ImageSet:
    try:
        _check_npz_sizes(path, limits)
        with np.load(path, allow_pickle=False) as archive:
            missing = [k for k in ("x", "y") if k not in archive.files]
            if missing:
                found = ", ".join(archive.files) or "nothing"
                raise BadInput(f"has no '{missing[0]}' array (found: {found})", path)
            x = archive["x"]
            if x.size > limits.max_tensor_elements:
                raise BadInput(f"'x' has {x.size} elements, more than the limit", path)
            y = archive["y"]
            class_names = _npz_strings(archive, "class_names", path)
            channels = _npz_strings(archive, "channels", path)
    except BadInput:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as err:
        text = " ".join(str(err).split()) or type(err).__name__
        raise BadInput(f"cannot read .npz: {text}", path) from None

    x = _npz_pixels(_npz_layout(x, spec, path), path)
    y = _npz_labels(y, len(x), path)
    if len(x) == 0:
        raise BadInput("'x' holds no images", path)
    space = {1: "gray", 3: "rgb", 4: "rgb"}[x.shape[-1]]
    if x.shape[-1] == 4:
        x = x[..., :3] * x[..., 3:]  # RGBA: over black, as for image files
    if channels and space == "rgb":
        if channels[0].lower() not in ("rgb", "bgr"):
            raise BadInput(f"'channels' must be rgb or bgr, got {channels[0]!r}", path)
        space = channels[0].lower()
    if tuple(x.shape[1:3]) != tuple(spec.size):
        if not resize:
            raise _size_error(path, x.shape[1:3], spec)
        x = resize_images(np.ascontiguousarray(x), spec.size)
    x = convert_channels(x, space, spec.channels)
    if class_names is None:
        class_names = [str(i) for i in range(int(y.max()) + 1)]
    return ImageSet(x, y, tuple(class_names), path)
