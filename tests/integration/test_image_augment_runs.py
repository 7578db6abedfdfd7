"""Augmented training end to end: exact resume still holds, and evaluation sees plain images."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import REPO
from safetensors.torch import load_file

import megalith as mg
from megalith.data.builtin import load_builtin

AUGMENTED = (
    "inputs=[{name: image, type: image, augment: "
    "{rotate: 10, shift: 0.1, crop: 0.85, color: 0.2, mixup: 0.2}}]"
)
COMMON = [
    AUGMENTED,
    "train.early_stop=null",
    "train.schedule.name=constant",
    "model.channels=[8, 16]",
    "train.baselines=false",
]


@pytest.mark.slow
def test_augmented_run_resumes_bit_for_bit_and_predicts_on_plain_images(tmp_path: Path) -> None:
    example = REPO / "examples" / "digits.yaml"
    straight = mg.train(example, output_dir=tmp_path / "a", overrides=[*COMMON, "train.epochs=2"])
    mg.train(example, output_dir=tmp_path / "b", overrides=[*COMMON, "train.epochs=1"])
    resumed = mg.train(resume=tmp_path / "b", overrides=["train.epochs=2"])
    a = load_file(tmp_path / "a" / "model.safetensors")
    b = load_file(tmp_path / "b" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.metrics["test"] == straight.metrics["test"]
    _predict_sees_the_images_unaugmented(straight)


def _predict_sees_the_images_unaugmented(run: mg.Run) -> None:
    rows = load_builtin("digits").head(64)
    first, second = run.predict(rows), run.predict(rows)
    assert first.equals(second)
    # the model applied to the plain encoded pixels gives the same classes as predict
    encoded = run.preprocessor.encode_inputs(
        rows.drop(columns=["label"]), base_dir=None, origin="rows"
    )
    run.model.eval()
    with torch.no_grad():
        logits = run.model({k: torch.as_tensor(v) for k, v in encoded.items()})["label"]
    classes = run.preprocessor.decode({"label": logits})["label"]
    assert list(classes) == list(first["label"])
    assert run.evaluate(rows)["accuracy"] == run.evaluate(rows)["accuracy"]
