"""Audio end to end: spoken digits synthesised by espeak-ng -> `init` -> train -> evaluate ->
export -> the torch-free runtime; and a bad sound file stopped before step 0."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import CliResult

import megalith as mg
from megalith.data.spoken_digits import make_spoken_digits
from megalith.errors import RunError
from megalith.runtime import load_bundle
from megalith.serving.app import ServeSettings, build_app
from megalith.serving.backend import load_backend

Cli = Callable[..., CliResult]


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """120 FLAC clips: 4 voices x 3 repeats x 10 digits at 8 kHz (about 5 s to make)."""
    folder = tmp_path_factory.mktemp("spoken")
    return make_spoken_digits(
        folder, speakers=4, repeats=3, test_speakers=1, val_speakers=1, fmt="flac"
    )


@pytest.mark.slow  # synthesis, a short training run and an ONNX export
def test_init_config_learns_spoken_digits_and_the_bundle_agrees(digits: Path, cli: Cli) -> None:
    table = pd.read_csv(digits).drop(columns="split")  # seen voices: rows split at random
    table.to_csv(digits.parent / "mixed.csv", index=False)
    written = cli("init", digits.parent / "mixed.csv", "--target", "digit")
    assert written.returncode == 0, written.stderr
    config = yaml.safe_load(written.stdout)
    assert config["inputs"][0]["type"] == "audio" and config["model"]["arch"] == "cnn"
    config["data"]["source"] = str(digits.parent / "mixed.csv")
    config["data"]["split"] = {"val": 0.15, "test": 0.25}
    assert config["train"]["batch_size"] == 16 and config["outputs"][0]["label_smoothing"] == 0.1
    # 90 train clips: augmentation would slow learning more than this short run can afford
    config["inputs"][0]["augment"] = None
    config["train"].update(epochs=20, batch_size=8, early_stop=None)
    path = digits.parent / "config.yaml"
    path.write_text(yaml.safe_dump(config))

    run = mg.train(path, output_dir=digits.parent / "run")

    accuracy = run.metrics["test"]["accuracy"]
    assert accuracy >= 0.5, f"test accuracy {accuracy} (chance is 0.1)"
    bundle = load_bundle(run.export(digits.parent / "bundle"))
    rows = run.data_splits()[1]["test"].drop(columns="digit")
    found = bundle.predict(rows, base_dir=digits.parent)
    expected = run.predict(rows, base_dir=digits.parent)
    assert found["digit"].tolist() == expected["digit"].tolist()
    probabilities = [c for c in expected.columns if c.startswith("digit_prob_")]
    assert (found[probabilities] - expected[probabilities]).abs().max().max() <= 1e-4
    with pytest.raises(RunError, match=r"serve does not take audio inputs yet \(audio\)"):
        build_app(load_backend(run), ServeSettings())  # a request's path would read any file


def test_a_corrupt_sound_file_stops_training_before_step_0(digits: Path, cli: Cli) -> None:
    table = pd.read_csv(digits)
    (digits.parent / "clips" / "broken.wav").write_bytes(b"RIFF....WAVEfmt nonsense")
    table.loc[5, "audio"] = "clips/broken.wav"
    table.to_csv(digits.parent / "broken.csv", index=False)
    config = {
        "name": "broken",
        "data": {"source": str(digits.parent / "broken.csv"), "split": {"column": "split"}},
        "inputs": [{"name": "audio", "type": "audio"}],
        "outputs": [{"name": "digit", "type": "category"}],
        "model": {"arch": "cnn"},
        "train": {"epochs": 1},
    }
    (digits.parent / "broken.yaml").write_text(yaml.safe_dump(config))
    result = cli("train", digits.parent / "broken.yaml", "--output-dir", "out")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "column 'audio', row 6: sound file" in result.stderr
    assert "broken.wav' cannot be read as audio" in result.stderr
