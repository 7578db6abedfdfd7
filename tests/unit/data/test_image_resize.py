"""max_side: large images are shrunk once, when encoded, to a size recorded in the JSON."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import torch
from PIL import Image

from megalith.data.features import CategoryOutput, ImageInput
from megalith.data.features.image import ImageInputEncoder, fitted_size
from megalith.data.preprocess import Preprocessor


def test_fitted_size_keeps_the_aspect_ratio_and_never_enlarges() -> None:
    assert fitted_size(112, 92, 64) == (64, 53)
    assert fitted_size(600, 1200, 100) == (50, 100)
    assert fitted_size(30, 20, 64) == (30, 20)
    assert fitted_size(30, 20, None) == (30, 20)


def test_large_photos_are_encoded_once_at_the_shrunk_size_and_predict_reuses_it(
    tmp_path, monkeypatch
) -> None:
    rng = np.random.default_rng(0)
    names = []
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (240, 180), np.uint8)).save(tmp_path / f"{i}.png")
        names.append(f"{i}.png")
    frame = pd.DataFrame({"photo": names, "label": ["a", "b", "a", "b"]})
    inputs = [ImageInput(name="photo", max_side=40)]
    preprocessor = Preprocessor.fit(
        inputs, [CategoryOutput(name="label")], frame, base_dir=tmp_path, origin="t.csv"
    )
    resizes = []
    original = Image.Image.resize

    def counted(image: Image.Image, size: tuple[int, int], *args: object) -> Image.Image:
        resizes.append(size)
        return original(image, size, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(Image.Image, "resize", counted)
    table = preprocessor.transform(frame, base_dir=tmp_path, origin="t.csv")
    assert table.inputs["photo"].shape == (4, 1, 40, 30)  # what every training step reads
    assert resizes == [(30, 40)] * 4  # once per image (Pillow takes width, height)
    assert preprocessor.input_specs[0].shape == (1, 40, 30)
    saved = json.loads(json.dumps(preprocessor.to_json()))
    assert saved["inputs"][0]["state"]["size"] == [40, 30]
    reloaded = Preprocessor.from_json(saved)
    again = reloaded.transform(frame, base_dir=tmp_path, origin="t.csv")
    assert torch.equal(again.inputs["photo"], table.inputs["photo"])


def test_configured_size_wins_over_max_side(tmp_path) -> None:
    Image.fromarray(np.zeros((100, 100), np.uint8)).save(tmp_path / "a.png")
    encoder = ImageInputEncoder(ImageInput(name="image", size=(24, 32), max_side=10))
    encoder.fit(pd.Series(["a.png"]), where="t", base_dir=tmp_path)
    assert encoder.size == (24, 32)
