"""ResNet: a stem, then stages of residual blocks (conv -> batch norm -> ReLU, plus a skip)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from pydantic import Field, PositiveInt, model_validator
from torch import nn

from megalith.configbase import ConfigModel
from megalith.data.specs import InputSpec, OutputSpec
from megalith.models.blocks import (
    FeatureModel,
    RecomputedBlock,
    image_shape,
    init_conv_kaiming,
)
from megalith.models.cnn import require_image_input
from megalith.models.registry import register_model

_LARGE_IMAGE = 64
"""Images at least this tall and wide get the ImageNet stem (7x7 stride 2 + max pool)."""


class ResNetConfig(ConfigModel):
    """A residual network with batch normalisation for image inputs."""

    arch: Literal["resnet"] = "resnet"
    channels: list[PositiveInt] = Field(default=[32, 64, 128], min_length=1)
    """Channels of each stage; every stage after the first halves the resolution."""
    blocks: list[PositiveInt] = Field(default=[2, 2, 2], min_length=1)
    """Residual blocks in each stage (same length as channels)."""
    bottleneck: bool = False
    """Use bottleneck blocks (1x1 -> 3x3 -> 1x1, 4x expansion) as in ResNet-50."""
    hidden: list[PositiveInt] = []
    """Widths of fully connected layers after the inputs are combined."""
    dropout: float = Field(default=0.0, ge=0, lt=1)
    """Dropout before each fully connected layer."""

    @model_validator(mode="after")
    def _one_block_count_per_stage(self) -> ResNetConfig:
        if len(self.blocks) != len(self.channels):
            raise ValueError(
                f"blocks has {len(self.blocks)} entries but channels has {len(self.channels)}; "
                "give one block count per stage"
            )
        return self


# -----------------------------------------------------------------------------
# residual blocks


def _conv_bn(
    in_channels: int, out_channels: int, kernel_size: int, stride: int = 1
) -> list[nn.Module]:
    conv = nn.Conv2d(
        in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2, bias=False
    )
    return [conv, nn.BatchNorm2d(out_channels)]


def _shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    """Identity when the shape is kept, else a strided 1x1 projection."""
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    return nn.Sequential(*_conv_bn(in_channels, out_channels, 1, stride))


def _zero_last_gamma(residual: nn.Sequential) -> None:
    # each block starts as the identity (Goyal et al. 2017): deep nets train from step 0
    last_norm = residual[-1]
    assert isinstance(last_norm, nn.BatchNorm2d)
    nn.init.zeros_(last_norm.weight)


class BasicBlock(RecomputedBlock):
    """relu(x + BN(conv3x3(relu(BN(conv3x3(x)))))): two 3x3 convs, stride on the first."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.residual = nn.Sequential(
            *_conv_bn(in_channels, out_channels, 3, stride),
            nn.ReLU(),
            *_conv_bn(out_channels, out_channels, 3),
        )
        self.shortcut = _shortcut(in_channels, out_channels, stride)
        self.relu = nn.ReLU()

    def block_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.residual(x) + self.shortcut(x))  # (B, C_out, H/s, W/s)


class Bottleneck(RecomputedBlock):
    """1x1 reduce to out/4 -> 3x3 (stride here, as in ResNet v1.5) -> 1x1 expand to out."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        width = max(out_channels // 4, 1)
        self.residual = nn.Sequential(
            *_conv_bn(in_channels, width, 1),
            nn.ReLU(),
            *_conv_bn(width, width, 3, stride),
            nn.ReLU(),
            *_conv_bn(width, out_channels, 1),
        )
        self.shortcut = _shortcut(in_channels, out_channels, stride)
        self.relu = nn.ReLU()

    def block_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.residual(x) + self.shortcut(x))  # (B, C_out, H/s, W/s)


# -----------------------------------------------------------------------------
# image backbone and builder


def _stem(in_channels: int, out_channels: int, height: int, width: int) -> list[nn.Module]:
    """3x3 stride 1 for small images (digits, CIFAR); 7x7 stride 2 + max pool from 64x64 up."""
    if min(height, width) >= _LARGE_IMAGE:
        return [
            *_conv_bn(in_channels, out_channels, 7, stride=2),
            nn.ReLU(),
            nn.MaxPool2d(3, stride=2, padding=1),
        ]
    return [*_conv_bn(in_channels, out_channels, 3), nn.ReLU()]


def residual_stages(spec: InputSpec, config: ResNetConfig) -> tuple[nn.Module, int]:
    """Stem -> stages of residual blocks (stride 2 entering each stage after the first) -> pool.

    With bottleneck blocks, `channels` are each block's output channels (4x its inner width),
    so channels [256, 512, 1024, 2048] and blocks [3, 4, 6, 3] give ResNet-50.
    """
    in_channels, height, width = image_shape(spec)
    block_type = Bottleneck if config.bottleneck else BasicBlock
    stem_channels = max(config.channels[0] // 4, 1) if config.bottleneck else config.channels[0]
    layers = _stem(in_channels, stem_channels, height, width)
    channels = stem_channels
    for stage, (out_channels, count) in enumerate(zip(config.channels, config.blocks, strict=True)):
        for index in range(count):
            stride = 2 if stage > 0 and index == 0 else 1
            layers.append(block_type(channels, out_channels, stride))
            channels = out_channels
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]  # (B, C_last, 1, 1) -> (B, C_last)
    backbone = nn.Sequential(*layers)
    init_conv_kaiming(backbone)
    for block in backbone:
        if isinstance(block, BasicBlock | Bottleneck):
            _zero_last_gamma(block.residual)
    return backbone, channels


@register_model("resnet")
def build_resnet(
    config: ResNetConfig, inputs: Sequence[InputSpec], outputs: Sequence[OutputSpec]
) -> FeatureModel:
    """Each image through its own residual network; other inputs encoded by type; MLP; heads."""
    require_image_input("resnet", inputs)
    return FeatureModel(
        inputs,
        outputs,
        image_backbone=lambda spec: residual_stages(spec, config),
        hidden=config.hidden,
        activation="relu",
        dropout=config.dropout,
    )
