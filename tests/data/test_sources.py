"""Image sources: folders of class subfolders and .npz files, decoded explicitly."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ulrl_edge.config import Limits
from ulrl_edge.data import ImageSet, PreprocessSpec, check_labels, load_images
from ulrl_edge.errors import BadInput

GRAY8 = PreprocessSpec(size=(8, 8), channels="gray")
RGB8 = PreprocessSpec(size=(8, 8), channels="rgb")


def _rgb_images(n: int = 6, size: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8), np.arange(n) % 3


def _write_folder(root, x: np.ndarray, y: np.ndarray, names=None) -> None:
    for i, (image, label) in enumerate(zip(x, y, strict=True)):
        folder = root / (names[label] if names else str(label))
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image.squeeze()).save(folder / f"{i:03d}.png")
    if names:
        (root / "classes.txt").write_text("\n".join(names) + "\n")


def test_folder_and_npz_give_identical_images(tmp_path):
    x, y = _rgb_images()
    _write_folder(tmp_path / "folder", x, y)
    np.savez(tmp_path / "nhwc.npz", x=x, y=y)
    np.savez(tmp_path / "nchw.npz", x=x.transpose(0, 3, 1, 2), y=y)
    np.savez(tmp_path / "float.npz", x=x.astype(np.float32) / 255, y=y)
    # the folder lists images class by class; put the arrays in the same order
    order = np.argsort(y, kind="stable")
    for spec in (RGB8, GRAY8, RGB8.updated(channels="bgr")):
        folder = load_images(tmp_path / "folder", spec)
        for name in ("nhwc.npz", "nchw.npz", "float.npz"):
            arrays = load_images(tmp_path / name, spec)
            np.testing.assert_allclose(folder.x, arrays.x[order], atol=1e-6)
            np.testing.assert_array_equal(folder.y, arrays.y[order])
    rgb = load_images(tmp_path / "nhwc.npz", RGB8)
    assert rgb.x.dtype == np.float32 and rgb.x.shape == (6, 8, 8, 3)
    np.testing.assert_allclose(rgb.x, x / 255.0, atol=1e-6)
    bgr = load_images(tmp_path / "nhwc.npz", RGB8.updated(channels="bgr"))
    np.testing.assert_array_equal(bgr.x, rgb.x[..., ::-1])
    gray = load_images(tmp_path / "nhwc.npz", GRAY8)
    expected = (x / 255.0) @ np.array([0.299, 0.587, 0.114])
    np.testing.assert_allclose(gray.x[..., 0], expected, atol=1e-5)


def test_pixel_modes_are_converted_explicitly(tmp_path):
    root = tmp_path / "modes"
    (root / "0").mkdir(parents=True)
    gray = np.full((8, 8), 200, np.uint8)
    Image.fromarray(gray).save(root / "0" / "gray.png")
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 255, 128  # half-transparent red → over black
    Image.fromarray(rgba).save(root / "0" / "rgba.png")
    Image.fromarray(np.full((8, 8), 40000, np.uint16)).save(root / "0" / "sixteen.png")
    palette = Image.fromarray(np.zeros((8, 8, 3), np.uint8)).convert("P")
    palette.save(root / "0" / "palette.bmp")
    Image.fromarray(np.full((8, 8, 3), 255, np.uint8)).convert("CMYK").save(root / "0" / "c.jpg")
    images = load_images(root, RGB8)
    by_name = dict(zip(["c", "gray", "palette", "rgba", "sixteen"], images.x, strict=True))
    np.testing.assert_allclose(by_name["gray"], 200 / 255, atol=1e-6)  # replicated
    np.testing.assert_allclose(by_name["rgba"][..., 0], 128 / 255, atol=1e-6)
    np.testing.assert_allclose(by_name["rgba"][..., 1:], 0.0)
    np.testing.assert_allclose(by_name["sixteen"], 40000 / 65535, atol=1e-6)
    np.testing.assert_allclose(by_name["palette"], 0.0)
    assert by_name["c"].min() > 0.9  # white survives the CMYK round trip


def test_classes_txt_names_and_order(tmp_path):
    x, y = _rgb_images(6)
    _write_folder(tmp_path, x, y, names=["cat", "dog", "emu"])
    images = load_images(tmp_path, RGB8)
    assert images.class_names == ("cat", "dog", "emu")
    assert images.y.tolist() == [0, 0, 1, 1, 2, 2]


def test_resize_only_when_asked(tmp_path):
    x, y = _rgb_images(4, size=12)
    _write_folder(tmp_path / "f", x, y)
    np.savez(tmp_path / "a.npz", x=x, y=y)
    for source in (tmp_path / "f", tmp_path / "a.npz"):
        with pytest.raises(BadInput, match=r"12×12 but the model takes 8×8; pass --size 8 8"):
            load_images(source, RGB8)
    folder = load_images(tmp_path / "f", RGB8, resize=True)
    arrays = load_images(tmp_path / "a.npz", RGB8, resize=True)
    assert folder.hwc == (8, 8, 3)
    np.testing.assert_allclose(folder.x, arrays.x[np.argsort(y, kind="stable")], atol=1e-6)


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda root: root.mkdir(), "no images found"),
        (lambda root: (root / "0").mkdir(parents=True), "no images found in the class folders"),
        (lambda root: _loose(root), "images must be in class subfolders"),
        (lambda root: _file(root / "cat" / "a.png", b""), "not a class index"),
        (lambda root: _file(root / "0" / "a.png", b"not a png"), "cannot decode image"),
        (lambda root: _file(root / "0" / "notes.txt", b"x"), "not a PNG, JPEG or BMP"),
        (lambda root: _file(root / "0" / "a.gif", b"GIF89a"), "not a PNG, JPEG or BMP"),
    ],
)
def test_bad_folders_name_the_culprit(tmp_path, build, match):
    root = tmp_path / "data"
    build(root)
    with pytest.raises(BadInput, match=match) as info:
        load_images(root, GRAY8)
    assert str(root) in str(info.value) and "\n" not in str(info.value)


def _file(path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


def _loose(root) -> None:
    root.mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "a.png")


def test_gif_disguised_as_png_is_refused(tmp_path):
    folder = tmp_path / "0"
    folder.mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(folder / "a.png", format="GIF")
    with pytest.raises(BadInput, match="GIF image; use PNG, JPEG or BMP"):
        load_images(tmp_path, GRAY8)


def test_decompression_limit(tmp_path):
    folder = tmp_path / "0"
    folder.mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(folder / "a.png")
    with pytest.raises(BadInput, match="more than the limit of 10 pixels"):
        load_images(tmp_path, GRAY8, limits=Limits(max_image_pixels=10))


@pytest.mark.parametrize(
    ("arrays", "match"),
    [
        ({"y": np.zeros(2)}, "has no 'x' array"),
        ({"x": np.zeros((2, 8, 8), np.uint8)}, "has no 'y' array"),
        ({"x": np.full((2, 8, 8), 2.0), "y": [0, 1]}, r"values span 2 to 2; store uint8"),
        ({"x": np.zeros((2, 8, 8), np.int64), "y": [0, 1]}, "dtype int64"),
        ({"x": np.zeros((2, 8, 8), np.uint8), "y": [0]}, "expected 2 labels"),
        ({"x": np.zeros((2, 8, 8), np.uint8), "y": [0.5, 1]}, "integer class indices"),
        ({"x": np.zeros((2, 8, 8), np.uint8), "y": [-1, 1]}, "negative labels"),
        ({"x": np.zeros((2, 5, 8, 8), np.uint8), "y": [0, 1]}, "no axis of 1, 3 or 4"),
        ({"x": np.zeros((0, 8, 8), np.uint8), "y": np.zeros(0, int)}, "holds no images"),
        ({"x": np.array([None, 1]), "y": [0, 1]}, "cannot read .npz"),
    ],
)
def test_bad_npz_files(tmp_path, arrays, match):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(BadInput, match=match) as info:
        load_images(path, GRAY8)
    assert str(path) in str(info.value)


def test_not_an_npz_and_missing_path(tmp_path):
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"PK\x03\x04 nonsense")
    with pytest.raises(BadInput, match="cannot read .npz"):
        load_images(broken, GRAY8)
    with pytest.raises(BadInput, match="no such file or folder"):
        load_images(tmp_path / "absent", GRAY8)
    (tmp_path / "x.csv").write_text("1,2")
    with pytest.raises(BadInput, match="not a folder or an .npz"):
        load_images(tmp_path / "x.csv", GRAY8)


def test_npz_optional_keys_and_gray_stack(tmp_path):
    x = np.random.default_rng(1).integers(0, 256, (3, 8, 8), dtype=np.uint8)
    np.savez(tmp_path / "g.npz", x=x, y=[0, 1, 1], class_names=np.array(["a", "b"]))
    images = load_images(tmp_path / "g.npz", RGB8)
    assert images.class_names == ("a", "b") and images.hwc == (8, 8, 3)
    np.testing.assert_allclose(images.x[..., 2], x / 255.0, atol=1e-6)
    rgb = np.random.default_rng(2).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    np.savez(tmp_path / "bgr.npz", x=rgb, y=[0, 1], channels=np.array("bgr"))
    as_rgb = load_images(tmp_path / "bgr.npz", RGB8)
    np.testing.assert_allclose(as_rgb.x, rgb[..., ::-1] / 255.0, atol=1e-6)


def test_check_labels_lists_unknown_labels(tmp_path):
    images = ImageSet(np.zeros((3, 8, 8, 1), np.float32), np.array([0, 11, 12]), source=tmp_path)
    check_labels(images, 13)
    with pytest.raises(BadInput, match=r"labels 11, 12 are outside the model's 10 classes"):
        check_labels(images, 10)
