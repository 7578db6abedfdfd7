"""Image encoder: decoding, conversion, resizing, statistics and every bad-file case."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from megalith.data.features.image import ImageInput, ImageInputEncoder
from megalith.errors import DataError

WHERE = "data/train.csv"


def write_png(path, array):
    Image.fromarray(array).save(path)
    return path.name


def fitted(values, tmp_path, **config):
    encoder = ImageInputEncoder(ImageInput(name="image", **config))
    encoder.fit(pd.Series(values), where=WHERE, base_dir=tmp_path)
    return encoder


def test_rgb_images_decode_to_uint8_bchw(tmp_path):
    red = np.zeros((4, 6, 3), np.uint8)
    red[..., 0] = 255
    names = [write_png(tmp_path / "a.png", red), write_png(tmp_path / "b.png", red // 5)]
    encoder = fitted(names, tmp_path)
    out = encoder.transform(pd.Series(names), where=WHERE, base_dir=tmp_path)
    assert out.dtype == torch.uint8 and out.shape == (2, 3, 4, 6)
    assert out[0, 0].eq(255).all() and out[0, 1:].eq(0).all() and out[1, 0].eq(51).all()
    spec = encoder.spec()
    assert spec.shape == (3, 4, 6)
    np.testing.assert_allclose(spec.mean, [(1.0 + 0.2) / 2, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(spec.std[0], 0.4, atol=1e-6)
    assert spec.std[1:] == (1.0, 1.0)  # constant channels: std 1 keeps normalisation finite


def test_greyscale_first_image_gives_one_channel_and_rgb_is_converted(tmp_path):
    grey = write_png(tmp_path / "grey.png", np.full((5, 5), 100, np.uint8))
    rgb = write_png(tmp_path / "rgb.png", np.full((5, 5, 3), (30, 60, 90), np.uint8))
    encoder = fitted([grey, rgb], tmp_path)
    out = encoder.transform(pd.Series([grey, rgb]), where=WHERE, base_dir=tmp_path)
    assert out.shape == (2, 1, 5, 5)
    assert out[0].eq(100).all()
    expected = round(30 * 0.299 + 60 * 0.587 + 90 * 0.114)  # Pillow's L conversion
    assert abs(int(out[1, 0, 0, 0]) - expected) <= 1


def test_configured_channels_turns_greyscale_into_rgb(tmp_path):
    grey = write_png(tmp_path / "grey.png", np.full((3, 3), 7, np.uint8))
    out = fitted([grey], tmp_path, channels=3).transform(
        pd.Series([grey]), where=WHERE, base_dir=tmp_path
    )
    assert out.shape == (1, 3, 3, 3) and out.eq(7).all()


def test_mixed_sizes_are_resized_to_the_first_image(tmp_path):
    small = write_png(tmp_path / "small.png", np.full((4, 4), 200, np.uint8))
    large = write_png(tmp_path / "large.png", np.full((16, 10), 50, np.uint8))
    encoder = fitted([small, large], tmp_path)
    out = encoder.transform(pd.Series([large, small]), where=WHERE, base_dir=tmp_path)
    assert out.shape == (2, 1, 4, 4) and out[0].eq(50).all() and out[1].eq(200).all()


def test_configured_size_and_order_kept_over_many_images(tmp_path):
    names = [write_png(tmp_path / f"{i}.png", np.full((6, 6), i, np.uint8)) for i in range(40)]
    encoder = fitted(names, tmp_path, size=(2, 3))
    out = encoder.transform(pd.Series(names), where=WHERE, base_dir=tmp_path)
    assert out.shape == (40, 1, 2, 3)
    assert out[:, 0, 0, 0].tolist() == list(range(40))


def test_numpy_array_cells(tmp_path):
    cells = [np.full((8, 8), 3, np.uint8), np.full((8, 8, 1), 9, np.uint8)]
    encoder = fitted(cells, tmp_path)
    out = encoder.transform(pd.Series(cells, dtype=object), where=WHERE, base_dir=None)
    assert out.shape == (2, 1, 8, 8) and out[0].eq(3).all() and out[1].eq(9).all()


def test_numpy_array_with_wrong_dtype_is_an_error(tmp_path):
    cells = pd.Series([np.zeros((4, 4), np.float32)], dtype=object)
    with pytest.raises(DataError, match="row 1: an in-memory image must be uint8"):
        fitted(cells, tmp_path)


def test_state_roundtrip_gives_identical_transform(tmp_path):
    rng = np.random.default_rng(0)
    names = [
        write_png(tmp_path / f"{i}.png", rng.integers(0, 256, (5, 7, 3), np.uint8))
        for i in range(3)
    ]
    encoder = fitted(names, tmp_path)
    state = json.loads(json.dumps(encoder.state()))
    rebuilt = ImageInputEncoder(encoder.config, state)
    assert rebuilt.spec() == encoder.spec()
    assert torch.equal(
        rebuilt.transform(pd.Series(names), where=WHERE, base_dir=tmp_path),
        encoder.transform(pd.Series(names), where=WHERE, base_dir=tmp_path),
    )


@pytest.fixture
def encoder_3x3(tmp_path):
    good = write_png(tmp_path / "good.png", np.zeros((3, 3), np.uint8))
    return fitted([good], tmp_path), good


def test_missing_file_names_path_and_row(tmp_path, encoder_3x3):
    encoder, good = encoder_3x3
    values = pd.Series([good, "missing.png"])
    with pytest.raises(
        DataError, match=r"column 'image', row 2: image '.*missing.png' does not exist"
    ):
        encoder.transform(values, where=WHERE, base_dir=tmp_path)


def test_non_image_file_is_an_error(tmp_path, encoder_3x3):
    encoder, _ = encoder_3x3
    (tmp_path / "notes.png").write_text("this is not a picture")
    with pytest.raises(DataError, match=r"row 1: image '.*notes.png' is not an image"):
        encoder.transform(pd.Series(["notes.png"]), where=WHERE, base_dir=tmp_path)


def test_truncated_png_is_an_error(tmp_path, encoder_3x3):
    encoder, _ = encoder_3x3
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), np.uint8)).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"row 1: image '.*cut.png' is corrupt or truncated"):
        encoder.transform(pd.Series(["cut.png"]), where=WHERE, base_dir=tmp_path)


def test_too_many_pixels_is_refused_before_decoding(tmp_path):
    name = write_png(tmp_path / "big.png", np.zeros((20, 30), np.uint8))
    with pytest.raises(DataError, match=r"row 1: image '.*big.png' has 30x20 pixels, more than"):
        fitted([name], tmp_path, max_pixels=100)


def test_pillow_decompression_bomb_becomes_data_error(tmp_path, monkeypatch):
    name = write_png(tmp_path / "bomb.png", np.zeros((20, 20), np.uint8))
    encoder = fitted([name], tmp_path)
    for limit in (300, 150):  # above MAX_IMAGE_PIXELS Pillow warns; above twice it, it raises
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
        with pytest.raises(DataError, match=r"row 1: image '.*bomb.png' is too large"):
            encoder.transform(pd.Series([name]), where=WHERE, base_dir=tmp_path)


def test_missing_cell_is_an_error(tmp_path, encoder_3x3):
    encoder, good = encoder_3x3
    with pytest.raises(DataError, match=r"column 'image', row 2: expected an image path, got nan"):
        encoder.transform(pd.Series([good, None]), where=WHERE, base_dir=tmp_path)
