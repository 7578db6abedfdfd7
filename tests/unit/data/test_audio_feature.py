"""Audio encoder: reading WAV / FLAC / OGG, mono mix-down, resampling, padding, every bad file."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import soundfile
import torch

from megalith.data.features.audio import AudioInput, AudioInputEncoder
from megalith.data.features.category import CategoryOutput
from megalith.data.preprocess import Preprocessor
from megalith.errors import DataError
from megalith.evaluate.summary import describe_fitted

WHERE = "data/train.csv"


def tone(hz: float, seconds: float, rate: int, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def write(path, wave, rate, **kwargs):
    soundfile.write(str(path), wave, rate, **kwargs)
    return path.name


def fitted(values, tmp_path, **config):
    encoder = AudioInputEncoder(AudioInput(name="clip", **config))
    encoder.fit(pd.Series(values), where=WHERE, base_dir=tmp_path)
    return encoder


def peak_hz(wave: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(wave))
    return float(np.fft.rfftfreq(len(wave), 1 / rate)[spectrum.argmax()])


def test_wav_flac_and_ogg_decode_to_float32_mono_at_the_first_files_rate(tmp_path):
    names = [
        write(tmp_path / "a.wav", tone(440, 0.5, 8000), 8000),
        write(tmp_path / "b.flac", tone(660, 0.25, 8000), 8000),
        write(tmp_path / "c.ogg", tone(880, 0.5, 8000), 8000, subtype="VORBIS"),
    ]
    encoder = fitted(names, tmp_path)
    out = encoder.transform(pd.Series(names), where=WHERE, base_dir=tmp_path)
    assert out.dtype == torch.float32 and out.shape == (3, 4000)  # longest clip, 8 kHz
    np.testing.assert_allclose(out[0].numpy(), tone(440, 0.5, 8000), atol=1e-4)  # 16-bit PCM
    assert out[1, 2000:].eq(0).all() and out[1, :2000].abs().max() > 0.4  # padded at the end
    assert abs(peak_hz(out[2].numpy(), 8000) - 880) < 4  # Vorbis is lossy: compare the pitch
    spec = encoder.spec()
    assert spec.type == "audio" and spec.shape == (4000,)
    assert spec.log_mel.sample_rate == 8000 and spec.log_mel.n_fft == 256  # >= 25 ms
    assert spec.log_mel.hop_length == 80 and len(spec.mean) == len(spec.std) == 40


def test_stereo_is_averaged_and_other_rates_are_resampled_to_sample_rate(tmp_path):
    left, right = tone(1000, 1.0, 16000), tone(1000, 1.0, 16000, amplitude=0.1)
    stereo = write(tmp_path / "stereo.wav", np.stack([left, right], axis=1), 16000)
    slow = write(tmp_path / "slow.wav", tone(1000, 1.0, 22050), 22050)
    encoder = fitted([stereo, slow], tmp_path, sample_rate=8000)
    out = encoder.encode(pd.Series([stereo, slow]), where=WHERE, base_dir=tmp_path)
    assert out.shape == (2, 8000)
    for wave in out:
        assert abs(peak_hz(wave, 8000) - 1000) < 2  # the pitch survives resampling
    middle = slice(1000, 7000)  # away from the resampler's edges
    np.testing.assert_allclose(np.abs(out[0, middle]).max(), 0.3, atol=0.01)  # (0.5 + 0.1) / 2
    np.testing.assert_allclose(np.abs(out[1, middle]).max(), 0.5, atol=0.01)


def test_duration_crops_to_the_first_seconds_and_pads_shorter_clips(tmp_path):
    ramp = np.linspace(-0.5, 0.5, 8000, dtype=np.float32)
    long = write(tmp_path / "long.wav", ramp, 8000, subtype="FLOAT")
    short = write(tmp_path / "short.wav", ramp[:100], 8000, subtype="FLOAT")
    encoder = fitted([long, short], tmp_path, duration=0.5)
    out = encoder.encode(pd.Series([long, short]), where=WHERE, base_dir=tmp_path)
    np.testing.assert_array_equal(out[0], ramp[:4000])
    np.testing.assert_array_equal(out[1, :100], ramp[:100])
    assert not out[1, 100:].any()


def test_the_fitted_state_round_trips_through_the_preprocessor_json(tmp_path):
    names = [write(tmp_path / f"{i}.wav", tone(300 * (i + 1), 0.3, 8000), 8000) for i in range(4)]
    frame = pd.DataFrame({"clip": names, "label": ["a", "b", "a", "b"]})
    config = AudioInput(name="clip", n_mels=16, mel_scale="htk", augment={})
    pre = Preprocessor.fit(
        [config], [CategoryOutput(name="label")], frame, base_dir=tmp_path, origin=WHERE
    )
    again = Preprocessor.from_json(json.loads(json.dumps(pre.to_json())))
    assert again.input_specs == pre.input_specs
    spec = again.input_specs[0]
    assert spec.log_mel.mel_scale == "htk" and len(spec.mean) == 16 and spec.augment is not None
    words = describe_fitted("audio", "input", config, pre.to_json()["inputs"][0]["state"])
    assert words.startswith("8000 Hz mono, 0.30 s; log-mel: 16 htk bins, 256-sample frames")
    first = pre.encode_inputs(frame, base_dir=tmp_path, origin=WHERE)["clip"]
    np.testing.assert_array_equal(
        again.encode_inputs(frame, base_dir=tmp_path, origin=WHERE)["clip"], first
    )


@pytest.mark.parametrize(
    ("cell", "problem"),
    [
        ("missing.wav", r"sound file '.*missing\.wav' does not exist"),
        ("corrupt.wav", r"sound file '.*corrupt\.wav' cannot be read as audio .*WAV, FLAC or OGG"),
        (3.5, r"expected the path of a sound file, got 3\.5"),
    ],
)
def test_bad_cells_name_the_row_and_the_file(tmp_path, cell, problem):
    good = write(tmp_path / "good.wav", tone(440, 0.2, 8000), 8000)
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF not really a wave file at all")
    encoder = fitted([good], tmp_path)
    with pytest.raises(DataError, match=rf"{WHERE}: column 'clip', row 2: {problem}"):
        encoder.encode(pd.Series([good, cell]), where=WHERE, base_dir=tmp_path)
    with pytest.raises(DataError, match="row 2"):  # fit surveys every train file first
        fitted([good, cell], tmp_path)


def test_f_max_above_half_the_sample_rate_is_refused(tmp_path):
    with pytest.raises(ValueError, match="above half the sample rate"):
        AudioInput(name="clip", sample_rate=8000, f_max=5000)
    name = write(tmp_path / "a.wav", tone(440, 0.2, 8000), 8000)
    with pytest.raises(DataError, match=r"must lie within 0-4000\.0 Hz"):
        fitted([name], tmp_path, f_max=6000)
