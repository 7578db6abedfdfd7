"""Each clip's extent in a padded batch of waveforms, and its frames mask (see
megalith.models.audio_mask for why trailing zeros are padding).

A clip ends at its last non-zero sample. Every function here is tensor ops without
data-dependent branches (except `trim_to_longest`, eager only), so a traced graph computes them.
"""

from __future__ import annotations

import torch


def clip_samples(wave: torch.Tensor) -> torch.Tensor:
    """float (B, S) -> int64 (B,): each clip's length, its last non-zero sample's index + 1
    (0 for an all-zero clip)."""
    positions = torch.arange(1, wave.shape[1] + 1, device=wave.device)  # (S,)
    return ((wave != 0).long() * positions).amax(dim=1)


def clip_frames(wave: torch.Tensor, hop_length: int) -> torch.Tensor:
    """float (B, S) -> int64 (B,): log-mel frames of each clip, 1 + length // hop_length (the
    frame count of the unpadded clip with centred frames)."""
    return 1 + torch.div(clip_samples(wave), hop_length, rounding_mode="floor")


def trim_to_longest(wave: torch.Tensor) -> torch.Tensor:
    """float (B, S) -> (B, S'): the batch cut after its longest clip's last non-zero sample (at
    least one sample). Eager mode only: under torch.compile, export or tracing the batch is left
    as it is (the result is the same, only slower)."""
    if torch.compiler.is_compiling() or torch.compiler.is_exporting() or torch.jit.is_tracing():
        return wave
    longest = max(int(clip_samples(wave).max()), 1)
    return wave[:, :longest]


def pad_to_length(wave: torch.Tensor, samples: int) -> torch.Tensor:
    """float (B, S) -> (B, max(S, samples)): zeros appended up to `samples`. Eager mode only, as
    `trim_to_longest` (an exported graph is given the fitted length)."""
    if torch.compiler.is_compiling() or torch.compiler.is_exporting() or torch.jit.is_tracing():
        return wave
    if wave.shape[1] >= samples:
        return wave
    return torch.nn.functional.pad(wave, (0, samples - wave.shape[1]))


def frame_mask(frames: torch.Tensor, length: int) -> torch.Tensor:
    """int (B,) frames, a time length T -> float32 (B, 1, 1, T): 1.0 on a clip's frames, else 0."""
    steps = torch.arange(length, device=frames.device)
    return (steps[None, :] < frames[:, None]).float()[:, None, None, :]


def masked_mean(x: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
    """float (B, C, H, T), frames (B,) -> (B, C): the mean over H and each clip's first frames."""
    mask = frame_mask(frames, x.shape[-1])
    counts = frames.clamp(min=1, max=x.shape[-1]).to(x.dtype) * x.shape[2]  # (B,)
    return (x * mask).sum(dim=(2, 3)) / counts[:, None]
