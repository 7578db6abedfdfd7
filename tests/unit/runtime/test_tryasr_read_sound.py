"""A recording that is not audio is refused in libsndfile's own words, without the address of
the in-memory buffer soundfile names ("Error opening <_io.BytesIO object at 0x...>"), which
the server used to send back to clients; empty bytes say they are empty."""

from __future__ import annotations

from pathlib import Path

import pytest

from megalith.data.features.audio import _unreadable
from megalith.errors import DataError
from megalith.runtime.transcription import read_sound


def test_bytes_that_are_not_audio_name_the_upload_not_a_buffer() -> None:
    with pytest.raises(DataError) as caught:
        read_sound(b"hello, not a recording\n", 8000, "file (notes.txt)")
    message = str(caught.value)
    assert message.startswith("file (notes.txt): cannot be read as audio (")
    assert "BytesIO" not in message and "0x" not in message


def test_empty_bytes_are_an_empty_recording() -> None:
    with pytest.raises(DataError, match=r"^body: the recording is empty \(0 bytes\)"):
        read_sound(b"", 8000, "body")


def test_a_table_cell_that_is_not_audio_says_why_once(tmp_path: Path) -> None:
    """The table's error names the file itself; libsndfile's "Error opening 'PATH'" is dropped."""
    import soundfile

    notes = tmp_path / "notes.wav"
    notes.write_text("not a recording\n")
    with pytest.raises(RuntimeError) as caught:
        soundfile.info(str(notes))
    reason = _unreadable(caught.value)
    assert reason.startswith("cannot be read as audio (") and str(notes) not in reason


def test_an_empty_sound_file_in_a_table_is_refused_naming_its_row(tmp_path: Path) -> None:
    """An empty WAV was read as silence: a recognizer's training blamed the transcript's length
    ("needs 21 CTC frames but its clip gives 1") and predict wrote a transcript for nothing."""
    import numpy as np
    import pandas as pd
    import soundfile

    from megalith.data.features.audio import AudioInput, AudioInputEncoder

    soundfile.write(str(tmp_path / "good.wav"), np.full(800, 0.1, np.float32), 8000)
    soundfile.write(str(tmp_path / "empty.wav"), np.zeros(0, np.float32), 8000)
    encoder = AudioInputEncoder(AudioInput(name="audio"))
    problem = r"clips\.csv: column 'audio', row 2: sound file '.*empty\.wav' holds no samples"
    with pytest.raises(DataError, match=problem):  # fit surveys every train file
        encoder.fit(pd.Series(["good.wav", "empty.wav"]), where="clips.csv", base_dir=tmp_path)
    encoder.fit(pd.Series(["good.wav"]), where="clips.csv", base_dir=tmp_path)
    with pytest.raises(DataError, match=problem):  # predict reads each file
        encoder.encode(pd.Series(["good.wav", "empty.wav"]), where="clips.csv", base_dir=tmp_path)


def test_a_few_samples_at_a_huge_rate_are_empty_at_the_models_rate() -> None:
    """A WAV header claiming 2 GHz resampled 8,000 samples to none, and the recognizer wrote a
    transcript for nothing; now it is refused like an empty recording."""
    import io
    import struct

    import numpy as np
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, np.full(8000, 0.1, np.float32), 8000, format="WAV", subtype="PCM_16")
    raw = bytearray(buffer.getvalue())
    raw[24:28] = struct.pack("<I", 2_000_000_000)  # the fmt chunk's sample rate
    with pytest.raises(DataError, match=r"^body: the recording is empty at 8000 Hz"):
        read_sound(bytes(raw), 8000, "body")
