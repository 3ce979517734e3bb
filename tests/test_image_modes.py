"""Every image mode Pillow opens decodes to the 8-bit RGB of the documented policy (glora.data.lists.to_rgb), checked
against a numpy reference, or is refused by `data check` naming the file and line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from glora.cli import main
from glora.data.lists import ImageList, load_rgb

RNG = np.random.default_rng(0)
SIXTEEN = np.array([[0, 255, 256, 4095, 32767, 32768, 65280, 65535]], dtype=np.uint16).repeat(2, axis=0)
PALETTE = RNG.integers(0, 256, 256 * 3, dtype=np.uint8)


def grey(values: np.ndarray) -> np.ndarray:
    return np.repeat(np.asarray(values, dtype=np.uint8)[..., None], 3, axis=-1)


def palette_image(mode: str, index: np.ndarray, alpha: np.ndarray | None = None) -> Image.Image:
    """A ``P`` (or, with ``alpha``, ``PA``) image of palette indices ``index`` and the palette PALETTE."""
    data = index if alpha is None else np.stack([index, alpha], -1)
    image = Image.frombytes(mode, index.shape[::-1], np.ascontiguousarray(data).tobytes())
    image.putpalette(PALETTE.tolist())
    return image


def colours(index: np.ndarray) -> np.ndarray:
    return PALETTE.reshape(256, 3)[index]


def cases():
    """(name, file suffix, image to save, the mode Pillow reopens it with, expected RGB, tolerance)."""
    index = RNG.integers(0, 256, (6, 5), dtype=np.uint8)
    alpha = RNG.integers(0, 256, (6, 5), dtype=np.uint8)
    rgb = RNG.integers(0, 256, (6, 5, 3), dtype=np.uint8)
    cmyk = RNG.integers(0, 256, (6, 5, 4), dtype=np.uint8)
    bits = RNG.integers(0, 2, (6, 5)).astype(bool)
    transparent = palette_image("P", index)
    transparent.info["transparency"] = int(index[0, 0])
    floats = RNG.random((6, 5)).astype(np.float32)
    floats[0, :2] = (0.0, 1.0)
    ints = SIXTEEN.astype(np.int32)
    c, k = cmyk[..., :3].astype(float), cmyk[..., 3:].astype(float)
    yield "1", "png", Image.fromarray(bits), "1", grey(bits * 255), 0
    yield "L", "png", Image.fromarray(index, "L"), "L", grey(index), 0
    yield "LA", "png", Image.fromarray(np.stack([index, alpha], -1), "LA"), "LA", grey(index), 0
    yield "P", "png", palette_image("P", index), "P", colours(index), 0
    yield "P+transparency", "png", transparent, "P", colours(index), 0
    yield "PA", "tiff", palette_image("PA", index, alpha), "PA", colours(index), 0
    yield "RGB", "png", Image.fromarray(rgb, "RGB"), "RGB", rgb, 0
    yield "RGBA", "png", Image.fromarray(np.concatenate([rgb, alpha[..., None]], -1), "RGBA"), "RGBA", rgb, 0
    yield "CMYK", "tiff", Image.fromarray(cmyk, "CMYK"), "CMYK", np.rint((255 - c) * (255 - k) / 255), 1
    yield "I;16", "png", Image.fromarray(SIXTEEN), "I;16", grey(SIXTEEN >> 8), 0
    yield "I;16B", "tiff", Image.fromarray(SIXTEEN.astype(">u2")), "I;16B", grey(SIXTEEN >> 8), 0
    sixteen_le = Image.frombytes("I;16L", SIXTEEN.shape[::-1], SIXTEEN.astype("<u2").tobytes())
    yield "I;16L", "tiff", sixteen_le, "I;16", grey(SIXTEEN >> 8), 0
    yield "I", "tiff", Image.fromarray(ints, "I"), "I", grey(SIXTEEN >> 8), 0
    yield "F", "tiff", Image.fromarray(floats, "F"), "F", grey(np.rint(floats * 255)), 0
    yield "YCbCr", "tiff", Image.fromarray(rgb, "YCbCr"), "YCbCr", ycbcr_to_rgb(rgb), 1


def ycbcr_to_rgb(ycc: np.ndarray) -> np.ndarray:
    """JPEG's full-range YCbCr -> RGB (ITU-T T.871)."""
    y, cb, cr = (ycc[..., i].astype(float) for i in range(3))
    out = np.stack([y + 1.402 * (cr - 128), y - 0.344136 * (cb - 128) - 0.714136 * (cr - 128),
                    y + 1.772 * (cb - 128)], -1)
    return np.clip(np.rint(out), 0, 255)


CASES = list(cases())


@pytest.mark.parametrize("name, suffix, image, reopened, expected, tolerance", CASES, ids=[c[0] for c in CASES])
def test_every_mode_decodes_to_the_documented_rgb(tmp_path, name, suffix, image, reopened, expected, tolerance):
    path = tmp_path / f"image.{suffix}"
    image.save(path)
    with Image.open(path) as opened:
        assert opened.mode == reopened, "the file does not exercise the mode it is meant to"
    decoded = load_rgb(path)
    assert decoded.mode == "RGB" and decoded.size == image.size
    diff = np.abs(np.asarray(decoded).astype(int) - np.asarray(expected).astype(int))
    assert diff.max() <= tolerance, (name, np.asarray(decoded)[0], np.asarray(expected)[0])


def test_sixteen_bit_grey_is_scaled_not_clipped_to_white(tmp_path):
    """The defect of issue 17: a 16-bit PNG passed the check and loaded as all 255."""
    path = tmp_path / "depth.png"
    Image.fromarray(np.full((4, 4), 32768, dtype=np.uint16)).save(path)
    assert np.asarray(load_rgb(path)).max() == 128
    sample, _ = ImageList([(str(path), 0)], None, num_classes=1)[0]
    assert np.array_equal(np.asarray(sample), np.full((4, 4, 3), 128, dtype=np.uint8))


def test_sixteen_bit_grey_and_sixteen_bit_rgb_decode_alike(tmp_path):
    """Pillow keeps the high byte of 16-bit RGB PNGs; 16-bit grey follows the same rule."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rgb16 = np.repeat(SIXTEEN[..., None], 3, axis=-1)
    raw = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in rgb16)
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", SIXTEEN.shape[1], SIXTEEN.shape[0], 16, 2,
                                                              0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    (tmp_path / "rgb16.png").write_bytes(png)
    Image.fromarray(SIXTEEN).save(tmp_path / "grey16.png")
    assert np.array_equal(np.asarray(load_rgb(tmp_path / "rgb16.png")), np.asarray(load_rgb(tmp_path / "grey16.png")))


def test_in_memory_modes_follow_pillow():
    """Modes no file format round-trips: HSV (Pillow's conversion), premultiplied alpha (dropped)."""
    from glora.data.lists import to_rgb

    hsv = Image.fromarray(np.array([[[0, 255, 255], [85, 255, 255]]], dtype=np.uint8), "HSV")
    assert np.asarray(to_rgb(hsv)).tolist() == [[[255, 0, 0], [0, 255, 0]]]
    rgba = Image.fromarray(np.array([[[10, 20, 30, 255]]], dtype=np.uint8), "RGBA")
    assert np.asarray(to_rgb(rgba.convert("RGBa"))).tolist() == [[[10, 20, 30]]]


REFUSED = [
    ("LAB", "tiff", lambda: Image.fromarray(np.full((4, 4, 3), 128, dtype=np.uint8), "LAB"), "mode LAB"),
    ("I out of range", "tiff", lambda: Image.fromarray(np.array([[-5, 70000]], dtype=np.int32), "I"),
     "outside the 16-bit range"),
    ("F above 1", "tiff", lambda: Image.fromarray(np.array([[0.0, 255.0]], dtype=np.float32), "F"),
     "only [0, 1] is decoded"),
    ("F with NaN", "tiff", lambda: Image.fromarray(np.array([[0.5, np.nan]], dtype=np.float32), "F"), "NaN"),
]


@pytest.mark.parametrize("name, suffix, make, message", REFUSED, ids=[r[0] for r in REFUSED])
def test_data_check_refuses_what_cannot_be_decoded_naming_file_and_line(tmp_path, capsys, name, suffix, make,
                                                                         message):
    root = tmp_path / "fewshot"
    folder = root / "toyshot"
    (folder / "annotations").mkdir(parents=True)
    Image.fromarray(np.zeros((4, 4, 3), dtype=np.uint8)).save(folder / "ok.png")
    make().save(folder / f"bad.{suffix}")
    lists = {"train_meta.list.num_shot_1.seed_0": "ok.png 0\nok.png 1\n", "val_meta.list": "ok.png 0\n",
             "test_meta.list": f"bad.{suffix} 0\n"}
    for list_name, text in lists.items():
        (folder / "annotations" / list_name).write_text(text)
    (root / "suite.json").write_text(json.dumps({"family": "fewshot", "datasets": {"toyshot": {
        "num_classes": 2, "shots": [1], "seeds": [0]}}}))
    assert main(["data", "check", "--family", "fewshot", "--root", str(root)]) == 2
    err = capsys.readouterr().err
    assert f"test_meta.list:1: cannot decode {folder / f'bad.{suffix}'}" in err and message in err, err
