"""`megalith init` on a table of sound file paths: typed audio, rate and duration from the files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import soundfile

from megalith.config import validate_config
from megalith.data.infer import infer_config
from megalith.data.sources import load_table


def test_a_column_of_sound_files_is_typed_audio_with_the_files_rate_and_length(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(20):
        seconds = 0.5 if i else 2.0  # one long clip: the 95th percentile ignores it
        suffix = (".wav", ".FLAC", ".ogg")[i % 3]
        name = f"clips/{i}{suffix}"
        (tmp_path / "clips").mkdir(exist_ok=True)
        wave = (0.1 * rng.standard_normal(int(16000 * seconds))).astype(np.float32)
        soundfile.write(str(tmp_path / name), wave, 16000)
        gain = round(float(rng.uniform(0, 3)), 2)
        rows.append({"sound": name, "word": ["yes", "no", "stop"][i % 3], "gain": gain})
    pd.DataFrame(rows).to_csv(tmp_path / "words.csv", index=False)
    table = load_table(str(tmp_path / "words.csv"))

    inference = infer_config(table, "word", source="words.csv")

    config = inference.config
    assert config["inputs"][0] == {
        "name": "sound",
        "type": "audio",
        "sample_rate": 16000,
        "duration": 0.5,
        "variable_length": True,
        "augment": {},
    }
    assert config["inputs"][1] == {"name": "gain", "type": "number"}  # mixed with a number
    assert config["model"]["arch"] == "crnn"
    assert config["train"]["schedule"]["name"] == "cosine"
    assert any("typed as audio at 16000 Hz, 0.5 s per clip" in n for n in inference.notices)
    validate_config(config)  # the written config is a valid one


def test_sampled_sound_headers_reads_evenly_spaced_files_and_skips_unreadable_ones(tmp_path):
    from megalith.data.infer_audio import sampled_sound_headers

    names = []
    for i in range(6):
        name = f"{i}.wav"
        soundfile.write(str(tmp_path / name), np.zeros(100 * (i + 1), np.float32), 8000)
        names.append(name)
    (tmp_path / "3.wav").write_bytes(b"not a sound file")
    column = pd.Series([*names, None], name="sound")

    assert sampled_sound_headers(column, tmp_path, limit=10) == [
        (8000, 100),
        (8000, 200),
        (8000, 300),
        (8000, 500),  # 3.wav cannot be read: skipped
        (8000, 600),
    ]
    assert sampled_sound_headers(column, tmp_path, limit=2) == [(8000, 100), (8000, 600)]
    assert sampled_sound_headers(pd.Series([None], name="sound"), tmp_path, limit=5) == []
