"""CRNN: conv stages on the log-mel spectrogram, a bidirectional GRU over its frames, and the mean
over each clip's frames.

    log-mel (B, 1, M, T) ─► masked conv stages ─► (B, C, M', T') ─► per frame C * M' features
      ─► Linear ─► bidirectional GRU over T' ─► (B, T', 2H) ─► mean over valid frames ─► (B, 2H)

The convolutions find local time-frequency patterns and the GRU orders them in time, as in
K. Choi et al., "Convolutional Recurrent Neural Networks for Music Classification" (ICASSP 2017)
and E. Cakir et al., "Convolutional Recurrent Neural Networks for Polyphonic Sound Event
Detection" (IEEE/ACM TASLP 2017). Padding never reaches a clip's features (see
megalith.models.audio_mask): the forward GRU reads the padding only after the clip's last
frame, and the backward GRU reads each clip reversed in place (its frames first, the padding
after), so neither state at a valid frame has seen padding; no packed sequences, so the ONNX
exporter traces it, and Opacus replaces each nn.GRU by its DPGRU for private training.
An image input is read the same way, its width as time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from pydantic import Field, PositiveInt
from torch import nn

from megalith.configbase import ConfigModel
from megalith.data.specs import InputSpec, OutputSpec
from megalith.errors import ConfigError
from megalith.models.audio_frames import frame_mask
from megalith.models.audio_mask import MaskedConvStages
from megalith.models.blocks import FeatureModel
from megalith.models.registry import register_model


class CRNNConfig(ConfigModel):
    """Conv stages + a bidirectional GRU over time for audio (log-mel) and image inputs."""

    arch: Literal["crnn"] = "crnn"
    channels: list[PositiveInt] = Field(default=[32, 64, 64], min_length=1)
    """Output channels of each conv stage; each stage halves the mel and time axes (down to 1)."""
    kernel_size: int = Field(default=3, gt=0)
    """Kernel size of every convolution (odd)."""
    gru_hidden: PositiveInt = 64
    """GRU units per direction; the clip's features are twice this wide."""
    gru_layers: PositiveInt = 1
    """Stacked bidirectional GRU layers."""
    hidden: list[PositiveInt] = []
    """Widths of the fully connected layers after the inputs are combined."""
    activation: Literal["relu", "gelu", "tanh", "sigmoid"] = "relu"
    """Activation of the conv stages and the fully connected layers."""
    dropout: float = Field(default=0.2, ge=0, lt=1)
    """Dropout on the GRU's input and before each fully connected layer."""


def reverse_in_place(x: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
    """float (B, T, D), frames (B,) -> (B, T, D) with each row's first `frames` steps reversed and
    the rest kept; applied twice it is the identity."""
    steps = torch.arange(x.shape[1], device=x.device)[None, :]  # (1, T)
    last = frames.clamp(min=1)[:, None] - 1  # (B, 1)
    order = torch.where(steps <= last, last - steps, steps)  # (B, T)
    return torch.gather(x, 1, order[:, :, None].expand(-1, -1, x.shape[2]))


class CRNNBackbone(nn.Module):
    """forward(x float (B, C, H, T), frames int (B,) | None = all valid) -> (B, 2 * gru_hidden)."""

    takes_frames = True

    def __init__(self, spec: InputSpec, config: CRNNConfig) -> None:
        super().__init__()
        self.stages = MaskedConvStages(spec, config.channels, config.kernel_size, config.activation)
        width = self.stages.out_channels * self.stages.out_height
        self.project = nn.Linear(width, config.gru_hidden)
        self.dropout = nn.Dropout(config.dropout)
        self.forward_grus = nn.ModuleList()
        self.backward_grus = nn.ModuleList()
        size = config.gru_hidden
        for _ in range(config.gru_layers):
            self.forward_grus.append(nn.GRU(size, config.gru_hidden, batch_first=True))
            self.backward_grus.append(nn.GRU(size, config.gru_hidden, batch_first=True))
            size = 2 * config.gru_hidden
        self.out_features = size

    def forward(self, x: torch.Tensor, frames: torch.Tensor | None = None) -> torch.Tensor:
        maps, frames = self.stages(x, frames)  # (B, C, H', T')
        steps = maps.flatten(1, 2).transpose(1, 2)  # (B, T', C * H')
        h = self.dropout(torch.relu(self.project(steps)))  # (B, T', G)
        for ahead, behind in zip(self.forward_grus, self.backward_grus, strict=True):
            forward_states, _ = ahead(h)
            backward_states, _ = behind(reverse_in_place(h, frames))
            h = torch.cat([forward_states, reverse_in_place(backward_states, frames)], dim=2)
        mask = frame_mask(frames, h.shape[1])[:, 0, 0, :, None]  # (B, T', 1)
        counts = frames.clamp(min=1, max=h.shape[1]).to(h.dtype)[:, None]
        return (h * mask).sum(dim=1) / counts  # (B, 2G)


@register_model("crnn")
def build_crnn(
    config: CRNNConfig, inputs: Sequence[InputSpec], outputs: Sequence[OutputSpec]
) -> FeatureModel:
    """Each audio / image input through its own CRNN; other inputs encoded by type; MLP; heads."""
    if not any(spec.type in ("image", "audio") for spec in inputs):
        raise ConfigError("model.arch 'crnn' needs an audio or image input; use arch: mlp")

    def backbone(spec: InputSpec) -> tuple[nn.Module, int]:
        module = CRNNBackbone(spec, config)
        return module, module.out_features

    return FeatureModel(
        inputs,
        outputs,
        image_backbone=backbone,
        hidden=config.hidden,
        activation=config.activation,
        dropout=config.dropout,
    )
