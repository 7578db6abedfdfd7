"""Audio end to end: spoken digits synthesised by espeak-ng -> `init` -> train -> evaluate ->
export -> the torch-free runtime -> `serve` (base64 uploads); and a bad sound file stopped
before step 0 (training) or with a 422 (serve)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import CliResult
from fastapi.testclient import TestClient

import megalith as mg
from megalith.data.spoken_digits import make_spoken_digits
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
    assert config["inputs"][0]["type"] == "audio" and config["model"]["arch"] == "crnn"
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
    bundle_path = run.export(digits.parent / "bundle")
    bundle = load_bundle(bundle_path)
    rows = run.data_splits()[1]["test"].drop(columns="digit")
    found = bundle.predict(rows, base_dir=digits.parent)
    expected = run.predict(rows, base_dir=digits.parent)
    assert found["digit"].tolist() == expected["digit"].tolist()
    probabilities = [c for c in expected.columns if c.startswith("digit_prob_")]
    assert (found[probabilities] - expected[probabilities]).abs().max().max() <= 1e-4
    served = [_served(run.path, rows, digits.parent), _served(bundle_path, rows, digits.parent)]
    for answers in served:  # the run (PyTorch) and the bundle (ONNX Runtime) over HTTP
        assert answers["digit"].tolist() == expected["digit"].tolist()
        gaps = answers[probabilities].to_numpy() - expected[probabilities].to_numpy()
        assert abs(gaps).max() <= 1e-4


def _served(run: Path, rows: pd.DataFrame, folder: Path) -> pd.DataFrame:
    """`rows` predicted by `serve`, each clip sent as its file's bytes, base64-encoded."""
    records = [
        {"audio": base64.b64encode((folder / path).read_bytes()).decode()} for path in rows["audio"]
    ]
    with TestClient(build_app(load_backend(run), ServeSettings())) as client:
        answer = client.post("/predict", json={"rows": records})
        assert answer.status_code == 200, answer.text
    return pd.DataFrame(answer.json()["predictions"])


@pytest.mark.slow  # a one-epoch training run to serve
@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("clips/zero.flac", "expected the sound file's bytes, base64-encoded"),
        (base64.b64encode(b"RIFF....WAVEfmt nonsense").decode(), "not a sound file"),
        (base64.b64encode(b"").decode(), "not a sound file"),
    ],
    ids=["a path", "not audio", "empty"],
)
def test_serve_refuses_an_audio_field_that_is_not_a_sound_file(
    tiny_audio_run: Path, value: str, problem: str
) -> None:
    with TestClient(build_app(load_backend(tiny_audio_run), ServeSettings())) as client:
        answer = client.post("/predict", json={"rows": [{"audio": value}]})
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    assert detail.startswith("rows.0.audio: ") and problem in detail, detail


@pytest.fixture(scope="module")
def tiny_audio_run(digits: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-epoch CNN on the spoken digits (enough to be served)."""
    config = {
        "name": "tiny",
        "data": {"source": str(digits), "split": {"column": "split"}},
        "inputs": [{"name": "audio", "type": "audio", "n_mels": 16}],
        "outputs": [{"name": "digit", "type": "category"}],
        "model": {"arch": "cnn", "channels": [4], "hidden": [8]},
        "train": {"epochs": 1, "baselines": False},
    }
    path = tmp_path_factory.mktemp("tiny") / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return mg.train(path, output_dir=path.parent / "run").path


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
