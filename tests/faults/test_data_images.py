"""Fault class 3: image bit depths and decompression bombs. 16-bit, 32-bit integer and float images
are converted by named conventions (checked against an independent float64 computation), what
has no faithful 8-bit form is refused by a StimulusError, and an image past the pixel limit is
refused before it is decoded."""

from __future__ import annotations

import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

import neurobench as nb
from neurobench.data.stimuli import StimulusSet, to_rgb_image
from neurobench.errors import StimulusError

from .data_support import PLUGIN, forget_plugin


def _gradients(n: int = 12, size: int = 24) -> np.ndarray:
    """n distinct 16-bit images whose values lie high in the range (clipping makes them all white)."""
    rng = np.random.default_rng(3)
    base = np.linspace(0, 1, size * size).reshape(size, size)
    return np.stack([(1000 + 64000 * (base * rng.uniform(0.2, 1) + rng.uniform(0, 0.3)) % 64500)
                     .astype(np.uint16) for _ in range(n)])


def _reference_uint8(values) -> np.ndarray:
    """The 16-bit convention, computed independently in float64."""
    return np.round(np.asarray(values, dtype=np.float64) * 255 / 65535).astype(np.uint8)


@pytest.fixture
def sixteen_bit_folder(tmp_path, monkeypatch):
    folder = tmp_path / "images16"
    folder.mkdir()
    stack = _gradients()
    for i, image in enumerate(stack):
        Image.fromarray(image).save(folder / f"img{i:02d}.png")
    np.save(folder / "reference.npy", np.repeat(_reference_uint8(stack)[..., None], 3, axis=3))
    monkeypatch.setenv("FAULTS_IMAGES", str(folder))
    return folder


def test_16_bit_pngs_score_as_their_8_bit_conversion(sixteen_bit_folder, cli, tmp_path):
    """The probe: 16-bit images became all white, every stimulus identical, score 0.0000 [0, 0] stored."""
    store = tmp_path / "s.sqlite"
    try:
        for bench in ("faults.images-rsa", "faults.reference-rsa"):
            result = cli("--plugin", PLUGIN, "score", "--model", "faults-pixels", "--benchmark", bench,
                         "--store", store, "--quiet", "--device", "cpu")
            assert result.returncode == 0, result.stderr
    finally:
        forget_plugin()
    board = nb.ResultStore(store).leaderboard().set_index("benchmark")
    files, reference = board.loc["faults.images-rsa"], board.loc["faults.reference-rsa"]
    assert files["raw"] == pytest.approx(reference["raw"], abs=1e-12) and reference["raw"] > 0.5
    assert (files["ci_low"], files["ci_high"]) == pytest.approx((reference["ci_low"], reference["ci_high"]))


def test_16_bit_files_and_arrays_convert_exactly(tmp_path):
    stack = _gradients(3)
    Image.fromarray(stack[0]).save(tmp_path / "a.png")          # 'I;16' PNG
    Image.fromarray(stack[1]).save(tmp_path / "b.tif")          # 'I;16' TIFF
    Image.fromarray(stack[2].astype(np.int32)).save(tmp_path / "c.tif")  # 'I' (32-bit) TIFF
    assert [Image.open(tmp_path / n).mode for n in ("a.png", "b.tif", "c.tif")] == ["I;16", "I;16", "I"]
    for name, values in zip(("a.png", "b.tif", "c.tif"), stack):
        got = np.asarray(to_rgb_image(tmp_path / name))
        assert got.dtype == np.uint8 and got.shape == values.shape + (3,)
        assert np.array_equal(got, np.repeat(_reference_uint8(values)[..., None], 3, axis=2)), name
    assert np.array_equal(np.asarray(to_rgb_image(stack[0]))[..., 0], _reference_uint8(stack[0]))  # uint16 array
    full = np.arange(65536, dtype=np.uint16).reshape(256, 256)  # every 16-bit value
    assert np.array_equal(np.asarray(to_rgb_image(full))[..., 0], _reference_uint8(full))


def test_float_images_in_0_1_convert_and_others_are_refused(tmp_path):
    values = np.random.default_rng(1).random((16, 16)).astype(np.float32)
    Image.fromarray(values).save(tmp_path / "f.tif")  # 'F' TIFF
    expected = np.round(values.astype(np.float64) * 255).astype(np.uint8)
    assert np.array_equal(np.asarray(to_rgb_image(tmp_path / "f.tif"))[..., 1], expected)
    assert np.array_equal(np.asarray(to_rgb_image(np.stack([values] * 3, 2).astype(np.float64)))[..., 2], expected)
    for bad, why in [(values * 2, r"\[0, 1\], found"), (np.full((4, 4), np.nan), "NaN"),
                     (values - 0.5, r"\[0, 1\], found")]:
        with pytest.raises(StimulusError, match=why):
            to_rgb_image(bad, "f")
    assert np.array_equal(np.asarray(to_rgb_image(np.eye(4, dtype=bool)))[..., 0], np.eye(4) * 255)


@pytest.mark.parametrize("values, why", [
    (np.full((8, 8), 200, np.int32), "255 or less"),
    (np.full((8, 8), -5, np.int32), "outside the 16-bit range"),
    (np.full((8, 8), 70000, np.int32), "outside the 16-bit range"),
])
def test_32_bit_integer_images_without_a_known_white_level_are_refused(tmp_path, values, why):
    Image.fromarray(values).save(tmp_path / "i.tif")
    stim = StimulusSet("one", ["i"], images=[str(tmp_path / "i.tif")])
    with pytest.raises(StimulusError, match=f"'i'.*no known white level.*{why}"):
        stim.content_hash()


def _png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height 8-bit grey pixels (a decompression bomb's shape)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("side", [10_000, 100_000])  # past Pillow's warning, past Pillow's error
def test_a_decompression_bomb_is_refused_by_a_typed_error_before_decoding(tmp_path, side):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header_only(side, side))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow's DecompressionBombWarning must not escape either
        with pytest.raises(StimulusError, match="bomb"):
            to_rgb_image(path, "bomb")


def test_the_pixel_limit_is_an_environment_variable(tmp_path, monkeypatch):
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(tmp_path / "a.png")
    monkeypatch.setenv("NEUROBENCH_MAX_IMAGE_PIXELS", "1000")
    with pytest.raises(StimulusError, match=r"64 x 64 = 4,096 pixels, more than the limit of 1,000"):
        to_rgb_image(tmp_path / "a.png")
    monkeypatch.setenv("NEUROBENCH_MAX_IMAGE_PIXELS", "lots")
    with pytest.raises(StimulusError, match="NEUROBENCH_MAX_IMAGE_PIXELS"):
        to_rgb_image(tmp_path / "a.png")
    monkeypatch.delenv("NEUROBENCH_MAX_IMAGE_PIXELS")
    assert to_rgb_image(tmp_path / "a.png").size == (64, 64)


def test_bad_images_end_a_cli_run_with_a_typed_error(sixteen_bit_folder, cli, tmp_path):
    (sixteen_bit_folder / "zz_bomb.png").write_bytes(_png_header_only(100_000, 100_000))
    try:
        result = cli("--plugin", PLUGIN, "score", "--model", "faults-pixels", "--benchmark", "faults.images-rsa",
                     "--store", tmp_path / "s.sqlite", "--quiet", "--device", "cpu")
    finally:
        forget_plugin()
    assert "Traceback" not in result.stderr and result.returncode in (1, 2)
    assert "zz_bomb.png" in result.stderr and "bomb" in result.stderr
    assert not (tmp_path / "s.sqlite").exists() or nb.ResultStore(tmp_path / "s.sqlite").leaderboard().empty
