"""megalith.runtime.transcription: sound files read at the model's rate with clear errors, and
recordings of any length transcribed through a forward pass over overlapping windows."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile

from megalith.errors import DataError
from megalith.runtime.ctc import greedy_ctc
from megalith.runtime.transcription import SpeechWindows, read_sound, transcribe_waves

RATE, FRAME = 8000, 160


def wav_bytes(wave: np.ndarray, rate: int = RATE, format: str = "WAV") -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, wave, rate, format=format)
    return buffer.getvalue()


def test_read_sound_mixes_down_and_resamples(tmp_path: Path) -> None:
    t = np.arange(16000) / 16000
    tone = 0.5 * np.sin(2 * np.pi * 440 * t).astype(np.float32)
    stereo = np.stack([tone, tone], axis=1)
    path = tmp_path / "tone.flac"
    soundfile.write(path, stereo, 16000)
    wave = read_sound(path, RATE, "tone.flac")
    assert wave.dtype == np.float32 and wave.shape == (8000,)
    # still a 440 Hz tone after resampling to 8 kHz
    spectrum = np.abs(np.fft.rfft(wave))
    assert abs(np.argmax(spectrum) * RATE / len(wave) - 440) < 2
    same = read_sound(wav_bytes(stereo, 16000), RATE, "upload")
    np.testing.assert_allclose(same, wave, atol=1e-3)


def test_bad_sound_is_a_data_error_naming_where(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"missing\.wav: no such sound file"):
        read_sound(tmp_path / "missing.wav", RATE, "missing.wav")
    with pytest.raises(DataError, match="upload: cannot be read as audio"):
        read_sound(b"this is not a sound file", RATE, "upload")
    with pytest.raises(DataError, match="upload: cannot be read as audio"):
        read_sound(wav_bytes(np.zeros(800, np.float32))[:30], RATE, "upload")  # cut header
    with pytest.raises(DataError, match="empty"):
        read_sound(wav_bytes(np.zeros(0, np.float32)), RATE, "upload")
    # a few bytes declared at 1 Hz would resample to 8,000 times as many samples
    with pytest.raises(DataError, match="upload: sampled at 1 Hz; speech needs at least 4000"):
        read_sound(wav_bytes(np.zeros(1000, np.float32), rate=1), RATE, "upload")


def letter_forward(windows: np.ndarray) -> np.ndarray:
    """A stand-in recognizer: frame j of a window is the label held by its sample j * FRAME
    (log-probs over blank + 9 labels); one more frame than window // FRAME, as a model has."""
    frames = windows.shape[1] // FRAME + 1
    heard = np.concatenate([windows[:, ::FRAME], np.zeros((len(windows), 1))], axis=1)
    heard = heard[:, :frames].astype(int)
    scores = np.full((*heard.shape, 10), -9.0, dtype=np.float32)
    np.put_along_axis(scores, heard[..., None], 0.0, axis=2)
    return scores


def spoken(labels: list[int]) -> np.ndarray:
    """Each label held for 2 frames then a silent (blank) frame."""
    return np.concatenate([np.repeat([v, v, 0], FRAME) for v in labels]).astype(np.float32)


def test_recordings_longer_and_shorter_than_the_window_are_transcribed_whole() -> None:
    rng = np.random.default_rng(0)
    long_labels = rng.integers(1, 10, size=300).tolist()  # 900 frames, 9 s
    short_labels = [3, 3, 1]
    windows = SpeechWindows.of(RATE, window=2 * RATE, frame=FRAME, overlap_seconds=0.5)
    decode = lambda scores: greedy_ctc(scores, 0)  # noqa: E731
    ids = transcribe_waves(
        [spoken(long_labels), spoken(short_labels)], letter_forward, windows, decode, batch_size=3
    )
    assert ids == [long_labels, short_labels]


def test_an_overlap_as_long_as_the_window_is_refused() -> None:
    with pytest.raises(DataError, match=r"--overlap 2\.0: must be between 0 and 1\.980"):
        SpeechWindows.of(RATE, window=2 * RATE, frame=FRAME, overlap_seconds=2.0)
    assert SpeechWindows.of(RATE, window=2 * RATE, frame=FRAME).overlap == RATE // 2
