"""The log-mel front end equals librosa's melspectrogram (+ the same log) on the same settings."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import torch

from megalith.data.features.logmel import LogMelSettings, log_mel, mel_filter_bank
from megalith.models.logmel import LogMel


def speechlike(rate: int, seconds: float, seed: int = 0) -> np.ndarray:
    """Harmonics with a moving pitch plus noise: energy in every mel bin, like a voice."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(rate * seconds)) / rate
    pitch = 120 + 40 * np.sin(2 * np.pi * 1.5 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    wave = sum(np.sin(k * phase) / k for k in range(1, 20)) * 0.2
    return (wave + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


@pytest.mark.parametrize("scale", ["slaney", "htk"])
def test_filter_bank_equals_librosa(scale):
    ours = mel_filter_bank(16000, 512, 64, 50.0, 7600.0, scale)
    theirs = librosa.filters.mel(
        sr=16000, n_fft=512, n_mels=64, fmin=50, fmax=7600, htk=scale == "htk"
    )
    np.testing.assert_allclose(ours, theirs, atol=1e-7)


@pytest.mark.parametrize(
    "settings",
    [
        LogMelSettings(8000, 256, 80, 40, 0.0, 4000.0, "slaney", 1e-6),
        LogMelSettings(16000, 400, 160, 64, 20.0, 7600.0, "htk", 1e-5),  # n_fft not a power of 2
    ],
)
def test_numpy_and_torch_log_mels_equal_librosa_within_1e_4(settings):
    wave = speechlike(settings.sample_rate, 0.7)
    power = librosa.feature.melspectrogram(
        y=wave.astype(np.float64),
        sr=settings.sample_rate,
        n_fft=settings.n_fft,
        hop_length=settings.hop_length,
        n_mels=settings.n_mels,
        fmin=settings.f_min,
        fmax=settings.f_max,
        htk=settings.mel_scale == "htk",
    )  # (M, T); center=True, zero padding, periodic Hann, power 2, Slaney norm
    reference = np.log(np.maximum(power, settings.floor))
    ours = log_mel(wave[None], settings)[0]
    with torch.no_grad():
        torched = LogMel(settings)(torch.from_numpy(wave)[None])[0].numpy()
    assert (
        ours.shape
        == torched.shape
        == reference.shape
        == (settings.n_mels, 1 + len(wave) // settings.hop_length)
    )
    np.testing.assert_allclose(ours, reference, atol=1e-4, rtol=0)
    np.testing.assert_allclose(torched, reference, atol=1e-4, rtol=0)


def test_silence_sits_on_the_floor_and_clips_are_independent():
    settings = LogMelSettings(8000, 256, 80, 40, 0.0, 4000.0, "slaney", 1e-6)
    waves = np.stack([np.zeros(800, np.float32), speechlike(8000, 0.1)])
    with torch.no_grad():
        out = LogMel(settings)(torch.from_numpy(waves))
    assert torch.equal(out[0], torch.full_like(out[0], float(np.log(1e-6))))
    with torch.no_grad():
        alone = LogMel(settings)(torch.from_numpy(waves[1:]))
    torch.testing.assert_close(out[1:], alone)
