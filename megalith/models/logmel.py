"""The audio front end inside the model: waveform -> normalised log-mel spectrogram, and the
train-time augmentation around it.

    waveform (B, S) ─► [gain, shift, noise] ─► LogMel (B, M, T) ─► (x - mean) / std per mel bin
                    ─► [SpecAugment masks] ─► (B, 1, M, T) for an image backbone

The STFT is a strided 1-D convolution with fixed, window-multiplied DFT bases and the mel filter
bank a matrix product (both from megalith.data.features.logmel), not torch.stft: the same numbers,
and an ONNX graph of plain Conv / Mul / MatMul / Log nodes that any runtime runs. The bases are
buffers derived from the spec (persistent=False), so a model file holds only learned weights.

Augmentation runs only in training mode and draws from PyTorch's default generator (seeded by the
run and saved in its checkpoints, so exact resume holds); every draw is a tensor op without
data-dependent Python branches. SpecAugment: D. S. Park et al., "SpecAugment: A Simple Data
Augmentation Method for Automatic Speech Recognition" (Interspeech 2019); masked values are set
to 0, the train mean of the normalised spectrogram.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from megalith.data.features.logmel import LogMelSettings, dft_bases


class LogMel(nn.Module):
    """float (B, S) waveform -> float32 (B, n_mels, 1 + S // hop_length) natural-log mel energies.

    Equals librosa.feature.melspectrogram (center=True, zero padding, periodic Hann, power 2)
    followed by log(max(., floor)), within float32 rounding.
    """

    bases: torch.Tensor  # (2F, 1, n_fft) buffer
    filter_bank: torch.Tensor  # (M, F) buffer

    def __init__(self, settings: LogMelSettings) -> None:
        super().__init__()
        self.hop_length = settings.hop_length
        self.padding = settings.n_fft // 2
        self.bins = settings.n_fft // 2 + 1
        self.floor = settings.floor
        bases = torch.tensor(dft_bases(settings.n_fft), dtype=torch.float32).unsqueeze(1)
        bank = torch.tensor(settings.filter_bank(), dtype=torch.float32)
        self.register_buffer("bases", bases, persistent=False)
        self.register_buffer("filter_bank", bank, persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        x = F.pad(wave.float().unsqueeze(1), (self.padding, self.padding))  # (B, 1, S + n_fft)
        spectrum = F.conv1d(x, self.bases, stride=self.hop_length)  # (B, 2F, T)
        real, imag = spectrum[:, : self.bins], spectrum[:, self.bins :]
        power = real * real + imag * imag  # (B, F, T)
        mel = torch.matmul(self.filter_bank, power)  # (M, F) @ (B, F, T) -> (B, M, T)
        return torch.clamp(mel, min=self.floor).log()


def augment_waveform(wave: torch.Tensor, augment: Any, sample_rate: int) -> torch.Tensor:
    """Random gain, circular time shift and white noise per clip; wave float (B, S) -> (B, S)."""
    batch, samples = wave.shape
    if augment.gain_db > 0:
        decibels = (torch.rand(batch, 1, device=wave.device) * 2 - 1) * augment.gain_db
        wave = wave * torch.pow(10.0, decibels / 20)
    most = min(round(augment.shift * sample_rate), samples - 1)
    if most > 0:
        shift = torch.randint(-most, most + 1, (batch, 1), device=wave.device)
        # circular: the padding's silence wraps around instead of speech being cut off
        source = torch.remainder(torch.arange(samples, device=wave.device) - shift, samples)
        wave = torch.gather(wave, 1, source)  # (B, S)
    if augment.noise_snr_db is not None:
        rms = wave.square().mean(dim=1, keepdim=True).sqrt()  # (B, 1)
        scale = rms * 10.0 ** (-augment.noise_snr_db / 20)
        wave = wave + torch.randn_like(wave) * scale
    return wave


def perturb_speed(wave: torch.Tensor, speeds: Any, width: int) -> torch.Tensor:
    """Speed perturbation (Ko et al. 2015): each clip (B, S) resampled to play at one of
    `speeds`, drawn uniformly per clip; returns (B, max(S, min(width, ceil(S / slowest)))).

    Sample t of the result is the clip at t * speed, linearly interpolated (a speed-up reads
    past samples without a low-pass filter: it folds only the band above Nyquist / speed back).
    A slowed clip grows, up to `width` samples (the model's clip length), and is cut there; the
    zero padding stays zero, so a clip's real length is still its last non-zero sample."""
    if not speeds:
        return wave
    batch, samples = wave.shape
    factors = torch.tensor(speeds, dtype=torch.float32, device=wave.device)
    factor = factors[torch.randint(len(speeds), (batch,), device=wave.device)]  # (B,)
    out = max(samples, min(width, math.ceil(samples / float(min(speeds)))))
    position = torch.arange(out, device=wave.device) * factor.unsqueeze(1)  # (B, out)
    low = position.floor().long()
    share = (position - low).to(wave.dtype)
    inside = (low < samples).to(wave.dtype)
    first = torch.gather(wave, 1, low.clamp(max=samples - 1))
    second = torch.gather(wave, 1, (low + 1).clamp(max=samples - 1))
    second = second * (low + 1 < samples).to(wave.dtype)  # past the end: silence
    return (first * (1 - share) + second * share) * inside


def spec_augment(spectrogram: torch.Tensor, augment: Any) -> torch.Tensor:
    """SpecAugment frequency and time masks, set to 0; float (B, M, T) -> (B, M, T)."""
    x = spectrogram
    x = _masked(x, augment.freq_masks, augment.freq_mask_width, dim=1)
    return _masked(x, augment.time_masks, augment.time_mask_width, dim=2)


def _masked(x: torch.Tensor, count: int, widest: int, dim: int) -> torch.Tensor:
    """Zero `count` bands per clip along `dim` (1: mel bins, 2: frames), each of a width drawn
    uniformly in 0..widest, starting uniformly where it fits."""
    size = x.shape[dim]
    widest = min(widest, size)
    if count == 0 or widest == 0:
        return x
    batch = x.shape[0]
    width = torch.randint(0, widest + 1, (batch, count, 1), device=x.device)
    start = (torch.rand(batch, count, 1, device=x.device) * (size - width + 1)).floor()
    position = torch.arange(size, device=x.device).view(1, 1, size)
    hit = ((position >= start) & (position < start + width)).any(dim=1)  # (B, size)
    keep = (~hit).to(x.dtype)
    return x * (keep.unsqueeze(2) if dim == 1 else keep.unsqueeze(1))


class AudioFrontEnd(nn.Module):
    """float (B, S) waveform -> normalised log-mel image float32 (B, 1, n_mels, frames), with
    the augmentation of `augment` (an AudioAugment, or None) in training mode."""

    mean: torch.Tensor  # (1, M, 1) buffer
    std: torch.Tensor  # (1, M, 1) buffer

    def __init__(
        self,
        settings: LogMelSettings,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        augment: Any = None,
    ) -> None:
        super().__init__()
        self.log_mel = LogMel(settings)
        self.sample_rate = settings.sample_rate
        self.augment = augment
        mean_t = torch.tensor(mean or (0.0,) * settings.n_mels, dtype=torch.float32)
        std_t = torch.tensor([max(s, 1e-6) for s in std or (1.0,) * settings.n_mels])
        self.register_buffer("mean", mean_t.view(1, -1, 1), persistent=False)
        self.register_buffer("std", std_t.float().view(1, -1, 1), persistent=False)

    def perturb_speed(self, wave: torch.Tensor, width: int) -> torch.Tensor:
        """`perturb_speed` by the augment's speeds in training mode (else `wave` unchanged)."""
        if not self.training or self.augment is None:
            return wave
        return perturb_speed(wave.float(), getattr(self.augment, "speeds", []), width)

    def forward(self, wave: torch.Tensor, speed: bool = True) -> torch.Tensor:
        """`speed` False: the caller perturbed the speed already (`perturb_speed`)."""
        augmenting = self.training and self.augment is not None  # fixed per mode: no data branch
        wave = wave.float()
        if augmenting and speed:
            wave = self.perturb_speed(wave, wave.shape[1])  # a clip keeps its shape
        if augmenting:
            wave = augment_waveform(wave, self.augment, self.sample_rate)
        x = (self.log_mel(wave) - self.mean) / self.std  # (B, M, T)
        if augmenting:
            x = spec_augment(x, self.augment)
        return x.unsqueeze(1)  # (B, 1, M, T)
