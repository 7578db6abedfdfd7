"""Variable-length clips: each clip's frames, a frames mask, and conv stages that keep the padding
out of a clip's features.

A clip ends at its last non-zero sample: the zeros after it are padding, whether the preprocessor
added them to reach `duration` or a batch was padded to its longest clip. (Trailing digital
silence carries nothing, so counting it as padding loses nothing.) The log-mel frames of a clip of
n samples are the first 1 + n // hop_length, as for the unpadded clip; the frames after them are
zeroed before every convolution, so a valid frame sees zeros beyond the clip's end exactly as the
convolution's own zero padding would, and features are averaged over valid frames only. A clip's
features therefore do not depend on how much padding follows it (up to float rounding): the
same clip gives the same prediction alone, batched with longer clips, or padded to any length.

The frame count is derived from the waveform with tensor ops only (no data-dependent branch),
so the ONNX graph computes it too and the runtime may pad a batch to any length.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from megalith.data.specs import InputSpec
from megalith.errors import ConfigError
from megalith.models.audio_frames import frame_mask, masked_mean
from megalith.models.blocks import image_shape, init_conv_kaiming, make_activation


class MaskedConvStages(nn.Module):
    """Conv -> BatchNorm -> activation -> MaxPool per stage, with the frames after each clip's
    end zeroed before every convolution and pooling.

    forward(x float (B, C, H, T), frames int (B,) or None = all T valid)
        -> (features (B, C_last, H', T'), frames' (B,)).
    The time axis is zero-padded to a multiple of the pooling factor first, so every pooling
    window starts at the same frame whatever the batch's length. Pooling halves a side while it
    stays >= 2 for the spec's size (as `megalith.models.cnn.conv_stages` does).
    """

    def __init__(
        self, spec: InputSpec, channels: Sequence[int], kernel_size: int, activation: str
    ) -> None:
        super().__init__()
        if kernel_size % 2 == 0:
            raise ConfigError(
                f"inputs.{spec.name}: model.arch crnn and variable-length audio need an odd "
                f"model.kernel_size (got {kernel_size}), so a convolution keeps the frames "
                "aligned; use 3 or 5"
            )
        in_channels, height, width = image_shape(spec)
        stages, pools = [], []
        for out_channels in channels:
            stages.append(
                nn.Sequential(
                    nn.Conv2d(
                        in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False
                    ),
                    nn.BatchNorm2d(out_channels),
                    make_activation(activation),
                )
            )
            pool = (2 if height >= 2 else 1, 2 if width >= 2 else 1)
            height, width = height // pool[0], width // pool[1]
            pools.append(pool)
            in_channels = out_channels
        self.stages = nn.ModuleList(stages)
        self.pools = pools
        self.multiple = 1
        for _, step in pools:
            self.multiple *= step
        self.out_channels, self.out_height = in_channels, height
        init_conv_kaiming(self)

    def forward(
        self, x: torch.Tensor, frames: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if frames is None:
            frames = torch.full((x.shape[0],), x.shape[-1], device=x.device, dtype=torch.long)
        x = F.pad(x, (0, (-x.shape[-1]) % self.multiple))
        for stage, (down, step) in zip(self.stages, self.pools, strict=True):
            x = stage(x * frame_mask(frames, x.shape[-1]))
            x = x * frame_mask(frames, x.shape[-1])
            if down > 1 or step > 1:
                x = F.max_pool2d(x, (down, step))
                frames = torch.div(frames + step - 1, step, rounding_mode="floor")
        return x, frames


class MaskedCNN(nn.Module):
    """The CNN backbone for variable-length clips: masked conv stages, then the mean over the
    mel axis and each clip's frames. forward(x (B, C, H, T), frames (B,) | None) -> (B, C_last)."""

    takes_frames = True

    def __init__(
        self, spec: InputSpec, channels: Sequence[int], kernel_size: int, activation: str
    ) -> None:
        super().__init__()
        self.stages = MaskedConvStages(spec, channels, kernel_size, activation)

    def forward(self, x: torch.Tensor, frames: torch.Tensor | None = None) -> torch.Tensor:
        features, frames = self.stages(x, frames)
        return masked_mean(features, frames)
