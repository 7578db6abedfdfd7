"""Audio augmentation end to end on generated tones of different lengths: a variable-length CRNN
run resumes bit for bit with every augmentation on, and its bundle predicts as the run does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile
import torch
import yaml
from safetensors.torch import load_file

import megalith as mg
from megalith.runtime import load_bundle

RATE = 8000
AUGMENT = {
    "gain_db": 6,
    "shift": 0.05,
    "noise_snr_db": 20,
    "freq_masks": 2,
    "freq_mask_width": 3,
    "time_masks": 2,
    "time_mask_width": 5,
}


@pytest.fixture(scope="module")
def tones(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """48 WAV clips of 0.2-0.6 s: a tone at 300, 800 or 1800 Hz in faint noise (the label)."""
    folder = tmp_path_factory.mktemp("tones")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(48):
        pitch = ("low", "mid", "high")[i % 3]
        hertz = {"low": 300.0, "mid": 800.0, "high": 1800.0}[pitch] * rng.uniform(0.95, 1.05)
        seconds = np.arange(int(RATE * rng.uniform(0.2, 0.6))) / RATE
        wave = 0.3 * np.sin(2 * np.pi * hertz * seconds) + rng.normal(0, 0.01, len(seconds))
        soundfile.write(folder / f"{i}.wav", wave.astype(np.float32), RATE)
        rows.append({"clip": f"{i}.wav", "pitch": pitch})
    pd.DataFrame(rows).to_csv(folder / "tones.csv", index=False)
    config = {
        "name": "tones",
        "seed": 3,
        "data": {"source": "tones.csv", "split": {"val": 0.25, "test": 0.25}},
        "inputs": [
            {
                "name": "clip",
                "type": "audio",
                "n_mels": 16,
                "variable_length": True,
                "augment": AUGMENT,
            }
        ],
        "outputs": [{"name": "pitch", "type": "category"}],
        "model": {"arch": "crnn", "channels": [4, 8], "gru_hidden": 8},
        "train": {"batch_size": 8, "baselines": False, "schedule": {"name": "constant"}},
    }
    (folder / "tones.yaml").write_text(yaml.safe_dump(config))
    return folder / "tones.yaml"


@pytest.mark.slow  # three short training runs and one ONNX export
def test_augmented_audio_resumes_bit_for_bit_and_the_bundle_agrees(tones: Path) -> None:
    out = tones.parent
    straight = mg.train(tones, output_dir=out / "a", overrides=["train.epochs=2"])
    mg.train(tones, output_dir=out / "b", overrides=["train.epochs=1"])
    resumed = mg.train(resume=out / "b", overrides=["train.epochs=2"])
    a, b = load_file(out / "a" / "model.safetensors"), load_file(out / "b" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.metrics["test"] == straight.metrics["test"]

    rows = pd.read_csv(out / "tones.csv").drop(columns="pitch")
    expected = straight.predict(rows, base_dir=out)
    assert expected.equals(straight.predict(rows, base_dir=out))  # no augmentation at predict
    found = load_bundle(straight.export(out / "bundle")).predict(rows, base_dir=out)
    assert found["pitch"].tolist() == expected["pitch"].tolist()
    probabilities = [c for c in expected.columns if c.startswith("pitch_prob_")]
    assert (found[probabilities] - expected[probabilities]).abs().max().max() <= 1e-4
