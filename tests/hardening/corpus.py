"""Broken and hostile inputs, generated on the fly (nothing binary is checked in).

Every builder takes a folder and writes one input there, returning the path to hand to the
CLI. The models are tiny hand-written ONNX graphs (a 10-class classifier on 8×8 gray images
and its broken variants), the images 8×8, so the whole corpus builds in well under a second.

The tables at the bottom pair each builder with the exit code and the message the CLI must
give; ``tests/hardening/test_*.py`` run them.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

NUM_CLASSES = 10
SIZE = 8
OPSET = 17
FEATURES = SIZE * SIZE


# ---------------------------------------------------------------- the good model and data


def _weights(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    w = rng.normal(0.0, 0.3, (NUM_CLASSES, FEATURES)).astype(np.float32)
    b = rng.normal(0.0, 0.1, NUM_CLASSES).astype(np.float32)
    return w, b


def _image_input(name: str = "input", elem: int = TensorProto.FLOAT) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, ["batch", 1, SIZE, SIZE])


def _logits(name: str = "logits", shape=("batch", NUM_CLASSES)) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))


def _model(nodes, inputs, outputs, initializers=(), opsets=(("", OPSET),)) -> onnx.ModelProto:
    graph = helper.make_graph(list(nodes), "g", list(inputs), list(outputs), list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets])
    model.ir_version = 8
    return model


def classifier_proto(w: np.ndarray | None = None, b: np.ndarray | None = None) -> onnx.ModelProto:
    """input [batch,1,8,8] → Flatten → Gemm(10×64) → logits [batch,10]."""
    w0, b0 = _weights()
    w = w0 if w is None else w
    b = b0 if b is None else b
    nodes = [
        helper.make_node("Flatten", ["input"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "W", "B"], ["logits"], transB=1),
    ]
    inits = [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")]
    return _model(nodes, [_image_input()], [_logits()], inits)


def save(proto: onnx.ModelProto, path: Path) -> Path:
    path.write_bytes(proto.SerializeToString())
    return path


def good_model(folder: Path, name: str = "model.onnx") -> Path:
    """A valid, convertible 10-class classifier on 8×8 gray images."""
    return save(classifier_proto(), folder / name)


def good_arrays(n: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` uint8 8×8 gray images (N×H×W×1) and labels cycling through every class."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, SIZE, SIZE, 1), dtype=np.uint8)
    y = (np.arange(n) % NUM_CLASSES).astype(np.int64)
    return x, y


def good_npz(folder: Path, n: int = 40, name: str = "data.npz") -> Path:
    x, y = good_arrays(n)
    np.savez(folder / name, x=x, y=y)
    return folder / name


def good_folder(folder: Path, n: int = 20, name: str = "images") -> Path:
    """An image folder ``0/ … 9/`` of 8-bit gray PNGs."""
    root = folder / name
    x, y = good_arrays(n)
    for i, (img, label) in enumerate(zip(x, y, strict=True)):
        (root / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(img[..., 0], mode="L").save(root / str(label) / f"{i}.png")
    return root


# ---------------------------------------------------------------- broken model files


def not_onnx(folder: Path) -> Path:
    path = folder / "readme.onnx"
    path.write_text("This is a text file, not a model.\n")
    return path


def random_bytes(folder: Path) -> Path:
    path = folder / "noise.onnx"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    return path


def empty(folder: Path) -> Path:
    path = folder / "empty.onnx"
    path.write_bytes(b"")
    return path


def truncated(fraction: float) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        data = classifier_proto().SerializeToString()
        path = folder / f"truncated_{int(fraction * 100)}.onnx"
        path.write_bytes(data[: max(1, int(len(data) * fraction))])
        return path

    build.__name__ = f"truncated_{int(fraction * 100)}"
    return build


def absurd_dims(folder: Path) -> Path:
    """An initializer declaring 10^12 float elements (and holding none)."""
    proto = classifier_proto()
    huge = TensorProto(name="huge", data_type=TensorProto.FLOAT, dims=[10**6, 10**6])
    proto.graph.initializer.append(huge)
    return save(proto, folder / "absurd_dims.onnx")


def negative_dims(folder: Path) -> Path:
    proto = classifier_proto()
    proto.graph.initializer[0].dims[0] = -10
    return save(proto, folder / "negative_dims.onnx")


def _external(location: str, name: str) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        proto = classifier_proto()
        weight = proto.graph.initializer[0]
        weight.ClearField("raw_data")
        weight.data_location = TensorProto.EXTERNAL
        entry = weight.external_data.add()
        entry.key, entry.value = "location", location.format(folder=folder)
        sub = folder / "model"
        sub.mkdir(exist_ok=True)
        # What the hostile location points at really exists, with the right byte count.
        (folder / "weights.bin").write_bytes(_weights()[0].tobytes())
        return save(proto, sub / "model.onnx")

    build.__name__ = name
    return build


external_parent = _external("../weights.bin", "external_parent")
external_absolute = _external("{folder}/weights.bin", "external_absolute")
external_missing = _external("nothere.bin", "external_missing")


def external_symlink(folder: Path) -> Path:
    path = _external("link.bin", "external_symlink")(folder)
    os.symlink(folder / "weights.bin", path.parent / "link.bin")
    return path


def oversized(folder: Path) -> Path:
    """A sparse file one byte over the 2 GiB limit (nothing is read, nothing allocated)."""
    path = folder / "huge.onnx"
    with open(path, "wb") as handle:
        handle.write(classifier_proto().SerializeToString())
        handle.truncate(2 * 1024**3 + 1)
    return path


def no_outputs(folder: Path) -> Path:
    proto = classifier_proto()
    del proto.graph.output[:]
    return save(proto, folder / "no_outputs.onnx")


def no_nodes(folder: Path) -> Path:
    proto = classifier_proto()
    del proto.graph.node[:]
    return save(proto, folder / "no_nodes.onnx")


def two_inputs(folder: Path) -> Path:
    w, b = _weights()
    nodes = [
        helper.make_node("Add", ["a", "b"], ["sum"]),
        helper.make_node("Flatten", ["sum"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "W", "B"], ["logits"], transB=1),
    ]
    inits = [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")]
    proto = _model(nodes, [_image_input("a"), _image_input("b")], [_logits()], inits)
    return save(proto, folder / "two_inputs.onnx")


def int_input(folder: Path) -> Path:
    """uint8 pixels in, cast inside the graph."""
    w, b = _weights()
    nodes = [
        helper.make_node("Cast", ["input"], ["f"], to=TensorProto.FLOAT),
        helper.make_node("Flatten", ["f"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "W", "B"], ["logits"], transB=1),
    ]
    inits = [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")]
    proto = _model(nodes, [_image_input(elem=TensorProto.UINT8)], [_logits()], inits)
    return save(proto, folder / "uint8_input.onnx")


def unknown_domain(folder: Path) -> Path:
    """A node in a domain the model never imports."""
    proto = classifier_proto()
    proto.graph.node.insert(0, helper.make_node("Scramble", ["input"], ["x"], domain="com.evil"))
    proto.graph.node[1].input[0] = "x"
    return save(proto, folder / "unknown_domain.onnx")


def custom_op(folder: Path) -> Path:
    """A declared vendor domain with a custom op nobody can run or convert."""
    proto = classifier_proto()
    proto.graph.node.insert(0, helper.make_node("Scramble", ["input"], ["x"], domain="com.acme"))
    proto.graph.node[1].input[0] = "x"
    proto.opset_import.append(helper.make_opsetid("com.acme", 1))
    return save(proto, folder / "custom_op.onnx")


def _branch(name: str, scale: float) -> onnx.GraphProto:
    w, b = _weights()
    nodes = [
        helper.make_node("Flatten", ["input"], [f"{name}_flat"], axis=1),
        helper.make_node(
            "Gemm", [f"{name}_flat", "W", "B"], [f"{name}_out"], transB=1, alpha=scale
        ),
    ]
    return helper.make_graph(nodes, name, [], [_logits(f"{name}_out")])


def control_if(folder: Path) -> Path:
    w, b = _weights()
    nodes = [
        helper.make_node("ReduceMean", ["input"], ["m"], keepdims=0),
        helper.make_node(
            "Constant", [], ["half"], value=numpy_helper.from_array(np.array(0.5, dtype=np.float32))
        ),
        helper.make_node("Greater", ["m", "half"], ["cond"]),
        helper.make_node(
            "If",
            ["cond"],
            ["logits"],
            then_branch=_branch("then", 1.0),
            else_branch=_branch("else", 2.0),
        ),
    ]
    inits = [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")]
    return save(_model(nodes, [_image_input()], [_logits()], inits), folder / "if.onnx")


def control_loop(folder: Path) -> Path:
    w, b = _weights()
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Add", ["acc_in", "acc_in"], ["acc_out"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("acc_in", TensorProto.FLOAT, None),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, None),
        ],
    )
    nodes = [
        helper.make_node("Flatten", ["input"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "W", "B"], ["g"], transB=1),
        helper.make_node("Loop", ["trips", "", "g"], ["logits"], body=body),
    ]
    inits = [
        numpy_helper.from_array(w, "W"),
        numpy_helper.from_array(b, "B"),
        numpy_helper.from_array(np.array(2, dtype=np.int64), "trips"),
    ]
    return save(_model(nodes, [_image_input()], [_logits()], inits), folder / "loop.onnx")


def no_class_axis(folder: Path) -> Path:
    """A per-pixel output (a filter, not a classifier)."""
    nodes = [helper.make_node("Relu", ["input"], ["logits"])]
    proto = _model(nodes, [_image_input()], [_logits(shape=("batch", 1, SIZE, SIZE))])
    return save(proto, folder / "per_pixel.onnx")


def scalar_output(folder: Path) -> Path:
    """One score per image: [batch] (no class axis)."""
    w, b = _weights()
    nodes = [
        helper.make_node("Flatten", ["input"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "W", "B"], ["g"], transB=1),
        helper.make_node("ReduceSum", ["g"], ["logits"], keepdims=0, noop_with_empty_axes=0),
    ]
    inits = [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")]
    return save(
        _model(nodes, [_image_input()], [_logits(shape=())], inits), folder / "scalar_output.onnx"
    )


def headless(folder: Path) -> Path:
    """Runs and has N×classes logits, but a Sin after the Gemm hides the classifier head."""
    w, b = _weights()
    nodes = [
        helper.make_node("Flatten", ["input"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "W", "B"], ["g"], transB=1),
        helper.make_node("Sin", ["g"], ["logits"]),
    ]
    inits = [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")]
    return save(_model(nodes, [_image_input()], [_logits()], inits), folder / "headless.onnx")


def nan_weights(folder: Path) -> Path:
    w, b = _weights()
    w[3, 5] = np.nan
    return save(classifier_proto(w, b), folder / "nan_weights.onnx")


def inf_weights(folder: Path) -> Path:
    w, b = _weights()
    b[2] = np.inf
    return save(classifier_proto(w, b), folder / "inf_weights.onnx")


# ---------------------------------------------------------------- broken image folders


def _folder_with(folder: Path, name: str, writer: Callable[[Path], None]) -> Path:
    root = good_folder(folder, name=name)
    writer(root / "3")
    return root


def png_bytes(width: int, height: int, bit_depth: int = 8, color_type: int = 0) -> bytes:
    """A PNG whose header declares ``width``×``height`` but holds almost no data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def undecodable_image(folder: Path) -> Path:
    return _folder_with(
        folder, "undecodable", lambda d: (d / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\ngarbage")
    )


def zero_byte_image(folder: Path) -> Path:
    return _folder_with(folder, "zero_byte", lambda d: (d / "zero.png").write_bytes(b""))


def gif_as_png(folder: Path) -> Path:
    return _folder_with(
        folder, "gif", lambda d: Image.new("L", (SIZE, SIZE)).save(d / "anim.png", format="GIF")
    )


def bomb_pillow(folder: Path) -> Path:
    """40000×40000 declared: past Pillow's own decompression-bomb error."""
    return _folder_with(
        folder, "bomb_pillow", lambda d: (d / "bomb.png").write_bytes(png_bytes(40000, 40000))
    )


def bomb_limit(folder: Path) -> Path:
    """9000×9000 declared: under Pillow's error, over Limits.max_image_pixels (64 Mpx)."""
    return _folder_with(
        folder, "bomb_limit", lambda d: (d / "bomb.png").write_bytes(png_bytes(9000, 9000))
    )


def wrong_size_image(folder: Path) -> Path:
    return _folder_with(
        folder, "wrong_size", lambda d: Image.new("L", (SIZE + 1, SIZE)).save(d / "big.png")
    )


def not_an_image(folder: Path) -> Path:
    return _folder_with(folder, "text_file", lambda d: (d / "notes.txt").write_text("hi"))


def labels_beyond_classes(folder: Path) -> Path:
    root = good_folder(folder, name="beyond")
    (root / "3").rename(root / "12")
    return root


def unlisted_class(folder: Path) -> Path:
    root = good_folder(folder, name="unlisted")
    (root / "classes.txt").write_text("\n".join(f"c{i}" for i in range(NUM_CLASSES)))
    for i in range(NUM_CLASSES):
        (root / str(i)).rename(root / f"c{i}")
    (root / "c4").rename(root / "dog")
    return root


def loose_images(folder: Path) -> Path:
    root = folder / "loose"
    root.mkdir()
    Image.new("L", (SIZE, SIZE)).save(root / "a.png")
    return root


def empty_folder(folder: Path) -> Path:
    root = folder / "nothing"
    root.mkdir()
    return root


def gray16_folder(folder: Path) -> tuple[Path, Path]:
    """The good images as 16-bit PNGs (v·257) and as 8-bit PNGs: the same pixels."""
    x, y = good_arrays(20)
    roots = folder / "gray16", folder / "gray8"
    for i, (img, label) in enumerate(zip(x, y, strict=True)):
        for root in roots:
            (root / str(label)).mkdir(parents=True, exist_ok=True)
        wide = img[..., 0].astype(np.uint16) * 257
        Image.fromarray(wide).save(roots[0] / str(label) / f"{i}.png")
        Image.fromarray(img[..., 0], mode="L").save(roots[1] / str(label) / f"{i}.png")
    return roots


def cmyk_folder(folder: Path) -> Path:
    root = folder / "cmyk"
    for label in range(NUM_CLASSES):
        (root / str(label)).mkdir(parents=True)
        Image.new("CMYK", (SIZE, SIZE), (0, 0, 0, 25 * label)).save(
            root / str(label) / "a.jpg", quality=95
        )
    return root


# ---------------------------------------------------------------- broken .npz files


def _npz(name: str, **arrays) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        np.savez(folder / f"{name}.npz", **{k: v() for k, v in arrays.items()})
        return folder / f"{name}.npz"

    build.__name__ = name
    return build


def _x() -> np.ndarray:
    return good_arrays()[0]


def _y() -> np.ndarray:
    return good_arrays()[1]


npz_wrong_keys = _npz("wrong_keys", images=_x, labels=_y)
npz_no_y = _npz("no_y", x=_x)
npz_int32_x = _npz("int32_x", x=lambda: _x().astype(np.int32), y=_y)
npz_complex_x = _npz("complex_x", x=lambda: _x().astype(np.complex64), y=_y)
npz_float_y = _npz("float_y", x=_x, y=lambda: _y() + 0.5)
npz_negative_y = _npz("negative_y", x=_x, y=lambda: _y() - 1)
npz_short_y = _npz("short_y", x=_x, y=lambda: _y()[:-3])
npz_2d_x = _npz("flat_x", x=lambda: _x().reshape(len(_x()), -1), y=_y)
npz_5d_x = _npz("five_d_x", x=lambda: _x()[:, None], y=_y)
npz_two_channels = _npz("two_channels", x=lambda: np.repeat(_x(), 2, axis=-1), y=_y)
npz_nan_x = _npz("nan_x", x=lambda: np.full((40, SIZE, SIZE, 1), np.nan, np.float32), y=_y)
npz_range_x = _npz("range_x", x=lambda: _x().astype(np.float32), y=_y)
npz_empty_x = _npz("empty_x", x=lambda: _x()[:0], y=lambda: _y()[:0])
npz_wrong_size = _npz("wrong_size", x=lambda: np.zeros((40, 9, 9, 1), np.uint8), y=_y)
npz_string_names = _npz("names_numbers", x=_x, y=_y, class_names=lambda: np.arange(10))


def npz_pickled(folder: Path) -> Path:
    """``x`` is an object array: loading it would unpickle."""
    path = folder / "pickled.npz"
    x = np.empty(2, dtype=object)
    x[0], x[1] = {"evil": 1}, [1, 2]
    np.savez(path, x=x, y=np.arange(2))
    return path


def npz_not_zip(folder: Path) -> Path:
    path = folder / "text.npz"
    path.write_text("x,y\n1,2\n")
    return path


def npz_truncated(folder: Path) -> Path:
    good = good_npz(folder, name="full.npz")
    path = folder / "truncated.npz"
    path.write_bytes(good.read_bytes()[:300])
    return path


def npz_absurd_shape(folder: Path) -> Path:
    """``x.npy`` declares 10^12 float32 elements; the member holds a few bytes."""
    import zipfile

    header = {"descr": "<f4", "fortran_order": False, "shape": (10**6, 10**6)}
    body = _npy_header(header) + b"\x00" * 64
    path = folder / "absurd.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x.npy", body)
        with archive.open("y.npy", "w") as handle:
            np.lib.format.write_array(handle, np.arange(4))
    return path


def npz_forged_shape(folder: Path) -> Path:
    """``x.npy`` declares 10^6 elements (under the limit) but holds 64 bytes."""
    import zipfile

    header = {"descr": "|u1", "fortran_order": False, "shape": (1000, 1000)}
    path = folder / "forged.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x.npy", _npy_header(header) + b"\x00" * 64)
        with archive.open("y.npy", "w") as handle:
            np.lib.format.write_array(handle, np.arange(4))
    return path


def _npy_header(header: dict) -> bytes:
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue()


def npz_empty_file(folder: Path) -> Path:
    path = folder / "empty.npz"
    path.write_bytes(b"")
    return path


# ---------------------------------------------------------------- the tables


@dataclass(frozen=True)
class Case:
    """One hostile input, what the CLI must answer, and the message it must give.

    Attributes:
        build: Writes the input into a folder and returns its path.
        code: Expected exit code (3 bad input, 4 unsupported model).
        message: Regular expression the one-line error must match.
    """

    build: Callable[[Path], Path]
    code: int
    message: str

    @property
    def name(self) -> str:
        return self.build.__name__


MODEL_CASES = [
    Case(not_onnx, 3, r"not an ONNX model"),
    Case(random_bytes, 3, r"not an ONNX model"),
    Case(empty, 3, r"empty file"),
    Case(truncated(0.01), 3, r"not an ONNX model or truncated"),
    Case(truncated(0.3), 3, r"not an ONNX model or truncated"),
    Case(truncated(0.6), 3, r"not an ONNX model or truncated"),
    Case(truncated(0.99), 3, r"not an ONNX model or truncated"),
    Case(absurd_dims, 3, r"tensor 'huge' has 1000000000000 elements"),
    Case(negative_dims, 3, r"Negative dimension value \(tensor name: W\)"),
    Case(external_parent, 3, r"external data location '\.\./weights\.bin' is not a plain path"),
    Case(external_absolute, 3, r"external data location '/.*' is not a plain path"),
    Case(external_symlink, 3, r"external data location 'link\.bin' resolves outside"),
    Case(external_missing, 3, r"external data file 'nothere\.bin' is missing"),
    Case(oversized, 3, r"2147483649 bytes, above the 2147483648-byte limit"),
    Case(no_outputs, 3, r"no graph outputs"),
    Case(no_nodes, 3, r"no graph in the file"),
    Case(two_inputs, 4, r"the model has 2 inputs \(a, b\); expected one image input"),
    Case(int_input, 4, r"input 'input' is (tensor\()?uint8\)?; ulrl-edge feeds float"),
    Case(unknown_domain, 3, r"No opset import for domain 'com\.evil'"),
    Case(custom_op, 4, r"com\.acme.Scramble"),
    Case(control_if, 4, r"no converter for op If"),
    Case(control_loop, 4, r"no converter for op Loop"),
    Case(no_class_axis, 4, r"output 'logits' has shape \['batch', 1, 8, 8\]; expected N×classes"),
    Case(scalar_output, 4, r"expected N×classes|no classifier head found.*ReduceSum"),
    Case(nan_weights, 3, r"tensor 'W' holds NaN or infinite values \(1 of 640"),
    Case(inf_weights, 3, r"tensor 'B' holds NaN or infinite values \(1 of 10"),
]

IMAGE_CASES = [
    Case(undecodable_image, 3, r"3/bad\.png: cannot decode image"),
    Case(zero_byte_image, 3, r"3/zero\.png: empty file \(0 bytes\), not an image"),
    Case(gif_as_png, 3, r"anim\.png: is a GIF image"),
    Case(bomb_pillow, 3, r"bomb\.png: image (too large|is 40000×40000)"),
    Case(bomb_limit, 3, r"bomb\.png: image is 9000×9000, more than the limit"),
    Case(wrong_size_image, 3, r"big\.png: image is 8×9 but the model takes 8×8"),
    Case(not_an_image, 3, r"notes\.txt: not a PNG, JPEG or BMP"),
    Case(labels_beyond_classes, 3, r"labels 12 are outside the model's 10 classes"),
    Case(unlisted_class, 3, r"dog: this class folder is not listed in classes\.txt"),
    Case(loose_images, 3, r"images must be in class subfolders"),
    Case(empty_folder, 3, r"no images found"),
]

NPZ_CASES = [
    Case(npz_wrong_keys, 3, r"has no 'x' array \(found: images, labels\)"),
    Case(npz_no_y, 3, r"has no 'y' array"),
    Case(npz_int32_x, 3, r"'x' has dtype int32"),
    Case(npz_complex_x, 3, r"'x' has dtype complex64"),
    Case(npz_float_y, 3, r"'y' has dtype float64; expected integer"),
    Case(npz_negative_y, 3, r"'y' holds negative labels"),
    Case(npz_short_y, 3, r"'y' has shape \(37,\); expected 40 labels"),
    Case(npz_2d_x, 3, r"'x' has shape \(40, 64\)"),
    Case(npz_5d_x, 3, r"'x' has shape \(40, 1, 8, 8, 1\)"),
    Case(npz_two_channels, 3, r"no axis of 1, 3 or 4 channels"),
    Case(npz_nan_x, 3, r"'x' holds NaN or infinite"),
    Case(npz_range_x, 3, r"'x' values span 0 to 255"),
    Case(npz_empty_x, 3, r"'x' holds no images"),
    Case(npz_wrong_size, 3, r"image is 9×9 but the model takes 8×8"),
    Case(npz_string_names, 3, r"'class_names' must hold strings"),
    Case(npz_pickled, 3, r"Object arrays cannot be loaded when allow_pickle=False"),
    Case(npz_not_zip, 3, r"text\.npz: cannot read \.npz: not an \.npz archive"),
    Case(npz_truncated, 3, r"truncated\.npz: cannot read \.npz: not an \.npz archive"),
    Case(npz_absurd_shape, 3, r"'x' declares 1000000000000 elements, above the"),
    Case(npz_forged_shape, 3, r"'x' declares shape \(1000, 1000\) but the archive holds only"),
    Case(npz_empty_file, 3, r"empty\.npz: cannot read \.npz: not an \.npz archive"),
]

BAD_TRIGGERS = [
    ("nosuch", r"unknown trigger 'nosuch'"),
    ("badnet", r"did you mean 'badnets'"),
    ("badnets:size=abc", r"size must be an integer"),
    ("badnets:size", r"'size' is not key=value"),
    ("badnets:size=3,size=4", r"'size' is given twice"),
    ("badnets:size=99999999999", r"size must be between"),
    ("badnets:pos=middle", r"pos must be one of"),
    ("badnets:colour=red", r"unknown parameter 'colour'"),
    ("blend:alpha=nan", r"alpha must be (finite|between)"),
    ("image:missing.png,mask=m.png", r"img file not found"),
    ("image", r"image needs img=FILE"),
    ("  ", r"empty trigger spec"),
    ("sig:delta=", r"'delta' has no value"),
]
