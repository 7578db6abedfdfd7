"""The log-mel spectrogram: its settings, the fixed bases it is computed from, and a numpy version.

    waveform (samples,) ─► zero-pad n_fft // 2 each side ─► frames every hop_length samples
    ─► Hann window x DFT (cos / sin bases) ─► power |X|^2 ─► mel filter bank ─► log(max(., floor))

The model computes the same thing in PyTorch (megalith.models.logmel) from the same bases, as a
strided convolution and a matrix product, so the exported ONNX graph holds the whole front end;
this numpy version fits the per-bin normalisation on the train rows and feeds the linear baseline.
The conventions are librosa's `feature.melspectrogram` defaults (center=True with zero padding, a
periodic Hann window of n_fft samples, power 2, Slaney-normalised triangular filters), so the
numbers equal librosa's on the same settings (tests/unit/data/test_audio_logmel.py).

Sources: S. S. Stevens, J. Volkmann, E. B. Newman, "A scale for the measurement of the psychological
magnitude pitch" (1937) for the mel scale; M. Slaney, "Auditory Toolbox" (1998) for the Slaney
variant (linear below 1 kHz, logarithmic above) and area-normalised filters; S. Young et al., "The
HTK Book" for the HTK formula 2595 * log10(1 + f / 700).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

MelScale = Literal["slaney", "htk"]

_SLANEY_HZ_PER_MEL = 200.0 / 3
_SLANEY_BREAK_HZ = 1000.0
_SLANEY_LOG_STEP = np.log(6.4) / 27.0
_FIT_CHUNK = 64
"""Clips transformed at once by `log_mel` (bounds the memory of the framed signal)."""


def hz_to_mel(hz: np.ndarray | float, scale: MelScale) -> np.ndarray:
    """Frequencies in Hz -> mels on the Slaney or HTK scale."""
    hz = np.asarray(hz, dtype=np.float64)
    if scale == "htk":
        return 2595.0 * np.log10(1.0 + hz / 700.0)
    linear = hz / _SLANEY_HZ_PER_MEL
    break_mel = _SLANEY_BREAK_HZ / _SLANEY_HZ_PER_MEL
    log_part = break_mel + np.log(np.maximum(hz, 1e-10) / _SLANEY_BREAK_HZ) / _SLANEY_LOG_STEP
    return np.where(hz >= _SLANEY_BREAK_HZ, log_part, linear)


def mel_to_hz(mel: np.ndarray | float, scale: MelScale) -> np.ndarray:
    """Mels on the Slaney or HTK scale -> frequencies in Hz (the inverse of `hz_to_mel`)."""
    mel = np.asarray(mel, dtype=np.float64)
    if scale == "htk":
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    break_mel = _SLANEY_BREAK_HZ / _SLANEY_HZ_PER_MEL
    log_part = _SLANEY_BREAK_HZ * np.exp(_SLANEY_LOG_STEP * (mel - break_mel))
    return np.where(mel >= break_mel, log_part, mel * _SLANEY_HZ_PER_MEL)


def mel_filter_bank(
    sample_rate: int, n_fft: int, n_mels: int, f_min: float, f_max: float, scale: MelScale
) -> np.ndarray:
    """Triangular filters, float64 (n_mels, n_fft // 2 + 1), each of unit area (Slaney's norm).

    The filter centres are n_mels points evenly spaced in mels between f_min and f_max (Hz); a
    filter rises from its left neighbour's centre to its own and falls to its right neighbour's.
    """
    bin_hz = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)  # (F,)
    edges_mel = np.linspace(hz_to_mel(f_min, scale), hz_to_mel(f_max, scale), n_mels + 2)
    edges_hz = mel_to_hz(edges_mel, scale)  # (M + 2,)
    widths = np.diff(edges_hz)  # (M + 1,)
    ramps = edges_hz[:, None] - bin_hz[None, :]  # (M + 2, F)
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))  # (M, F)
    return weights * (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, None]


def dft_bases(n_fft: int) -> np.ndarray:
    """float64 (2 * F, n_fft), F = n_fft // 2 + 1: the real-DFT cosine rows then the (negated)
    sine rows, each multiplied by a periodic Hann window; `frame @ bases.T` is the windowed
    spectrum's real and imaginary parts side by side."""
    n = np.arange(n_fft)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * n / n_fft)  # periodic Hann, as scipy's fftbins=True
    angle = 2 * np.pi * np.outer(np.arange(n_fft // 2 + 1), n) / n_fft  # (F, n_fft)
    return np.concatenate([np.cos(angle) * window, -np.sin(angle) * window])


@dataclass(frozen=True)
class LogMelSettings:
    """Everything that fixes the log-mel numbers of a waveform (resolved: no defaults left open)."""

    sample_rate: int
    """Hz, the rate the waveforms were resampled to."""
    n_fft: int
    """Samples per frame (the window length)."""
    hop_length: int
    """Samples between the starts of consecutive frames."""
    n_mels: int
    """Mel filters (the spectrogram's height)."""
    f_min: float
    """Hz, the lower edge of the lowest filter."""
    f_max: float
    """Hz, the upper edge of the highest filter (at most sample_rate / 2)."""
    mel_scale: MelScale
    """'slaney' (librosa's default) or 'htk'."""
    floor: float
    """Mel energies below this are raised to it before the log (silence stays finite)."""

    def frames(self, samples: int) -> int:
        """Frames of a waveform of `samples` samples (center padding: 1 + samples // hop)."""
        return 1 + samples // self.hop_length

    def filter_bank(self) -> np.ndarray:
        """float64 (n_mels, n_fft // 2 + 1), see `mel_filter_bank`."""
        return mel_filter_bank(
            self.sample_rate, self.n_fft, self.n_mels, self.f_min, self.f_max, self.mel_scale
        )


def log_mel(waveforms: np.ndarray, settings: LogMelSettings) -> np.ndarray:
    """float32 (B, samples) -> float64 (B, n_mels, frames): the natural log of the mel energies.

    Raises:
        ValueError: a waveform is not longer than n_fft // 2 samples.
    """
    half = settings.n_fft // 2
    if waveforms.shape[1] <= half:
        raise ValueError(f"waveforms of {waveforms.shape[1]} samples are shorter than n_fft / 2")
    bases = dft_bases(settings.n_fft)  # (2F, n_fft)
    bank = settings.filter_bank()  # (M, F)
    bins = bank.shape[1]
    out = np.empty((len(waveforms), settings.n_mels, settings.frames(waveforms.shape[1])))
    for start in range(0, len(waveforms), _FIT_CHUNK):
        chunk = np.asarray(waveforms[start : start + _FIT_CHUNK], dtype=np.float64)
        padded = np.pad(chunk, ((0, 0), (half, half)))
        framed = np.lib.stride_tricks.sliding_window_view(padded, settings.n_fft, axis=1)
        spectrum = framed[:, :: settings.hop_length] @ bases.T  # (b, T, 2F)
        power = spectrum[..., :bins] ** 2 + spectrum[..., bins:] ** 2  # (b, T, F)
        mel = power @ bank.T  # (b, T, M)
        out[start : start + len(chunk)] = np.log(np.maximum(mel, settings.floor)).transpose(0, 2, 1)
    return out
