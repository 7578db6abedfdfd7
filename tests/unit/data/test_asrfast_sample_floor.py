"""A training table's sound file sampled below 4 kHz is refused before step 0, naming the file
and its row, as transcribe and serve refuse such audio (the encoder used to resample it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile

from megalith.data.features.audio import MIN_SAMPLE_RATE, AudioInput, AudioInputEncoder
from megalith.errors import DataError
from megalith.runtime import transcription


def test_a_file_sampled_below_4_khz_is_refused_naming_its_row(tmp_path: Path) -> None:
    assert MIN_SAMPLE_RATE == transcription.MIN_SAMPLE_RATE == 4000  # one floor everywhere
    soundfile.write(str(tmp_path / "good.wav"), np.full(800, 0.1, np.float32), 8000)
    soundfile.write(str(tmp_path / "slow.wav"), np.full(300, 0.1, np.float32), 3000)
    encoder = AudioInputEncoder(AudioInput(name="audio", sample_rate=8000))
    problem = (
        r"clips\.csv: column 'audio', row 2: sound file '.*slow\.wav' is sampled at 3000 Hz, "
        r"below the 4000 Hz"
    )
    with pytest.raises(DataError, match=problem):  # fit surveys every train file's header
        encoder.fit(pd.Series(["good.wav", "slow.wav"]), where="clips.csv", base_dir=tmp_path)
    encoder.fit(pd.Series(["good.wav"]), where="clips.csv", base_dir=tmp_path)
    with pytest.raises(DataError, match=problem):  # validation, test and predict read each file
        encoder.encode(pd.Series(["good.wav", "slow.wav"]), where="clips.csv", base_dir=tmp_path)
    edge = tmp_path / "edge.wav"
    soundfile.write(str(edge), np.full(400, 0.1, np.float32), MIN_SAMPLE_RATE)
    assert encoder.encode(pd.Series([str(edge)]), where="clips.csv").shape == (1, 800)
