"""CNN: images through conv -> norm -> activation -> pool stages; other inputs encoded by type."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Literal

import torch
from pydantic import Field, PositiveInt
from torch import nn

from megalith.configbase import ConfigModel
from megalith.data.specs import InputSpec, OutputSpec
from megalith.errors import ConfigError
from megalith.models.audio_mask import MaskedCNN
from megalith.models.blocks import FeatureModel, image_shape, init_conv_kaiming, make_activation
from megalith.models.registry import register_model


class CNNConfig(ConfigModel):
    """A plain convolutional network for image inputs, combined with any other inputs by an MLP."""

    arch: Literal["cnn"] = "cnn"
    channels: list[PositiveInt] = Field(default=[32, 64], min_length=1)
    """Output channels of each conv stage; each stage halves the resolution (down to 1x1)."""
    kernel_size: int = Field(default=3, gt=0)
    """Kernel size of every convolution."""
    hidden: list[PositiveInt] = [128]
    """Widths of the fully connected layers after the inputs are combined."""
    activation: Literal["relu", "gelu", "tanh", "sigmoid"] = "relu"
    """Activation used throughout."""
    dropout: float = Field(default=0.2, ge=0, lt=1)
    """Dropout before each fully connected layer."""


# -----------------------------------------------------------------------------
# image backbone and builder


def conv_stages(
    spec: InputSpec, channels: Sequence[int], kernel_size: int, activation: str
) -> tuple[nn.Module, int]:
    """Conv -> BatchNorm -> activation -> MaxPool(2) per stage, then global average pool.

    Pooling is skipped once it would shrink a side below 1, so 8x8 digits work with any depth.
    """
    in_channels, height, width = image_shape(spec)
    layers: list[nn.Module] = []
    for out_channels in channels:
        layers += [
            nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
            nn.BatchNorm2d(out_channels),
            make_activation(activation),
        ]
        # an even kernel with padding k // 2 grows each side by one
        height += 2 * (kernel_size // 2) - kernel_size + 1
        width += 2 * (kernel_size // 2) - kernel_size + 1
        if min(height, width) >= 2:
            layers.append(nn.MaxPool2d(2))
            height, width = height // 2, width // 2
        in_channels = out_channels
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]  # (B, C_last, 1, 1) -> (B, C_last)
    backbone = nn.Sequential(*layers)
    init_conv_kaiming(backbone)
    return backbone, in_channels


def use_channels_last(model: nn.Module, device: torch.device) -> None:
    """Store the 2-D convolution weights of `model` channels-last (NHWC), in place, on CPU and
    CUDA; other models and devices are left as they are.

    Convolutions then run PyTorch's NHWC kernels and hand NHWC activations on, whatever the
    layout of the images: oneDNN on CPU, cuDNN on CUDA, and at batch 1 on CPU (where PyTorch
    keeps its reference kernel for small inputs, as oneDNN is slower there) its NHWC variant.
    Values are the same up to float rounding. On one CPU thread, a ResNet-18 shape on 64x64 RGB
    images predicts 1.8x faster at batch 1, and a small ResNet trains 1.2-1.3x faster
    (benchmarks/predict_latency.py, benchmarks/loop_overhead.py).
    """
    if device.type not in ("cpu", "cuda"):
        return
    weights = [m.weight for m in model.modules() if isinstance(m, nn.Conv2d)]
    sharded = sys.modules.get("torch.distributed.tensor")  # loaded once FSDP is (never imported)
    if sharded is not None and any(isinstance(w, sharded.DTensor) for w in weights):
        return  # FSDP shards only contiguous parameters (train.strategy fsdp)
    if weights and not all(w.is_contiguous(memory_format=torch.channels_last) for w in weights):
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]


def require_image_input(arch: str, inputs: Sequence[InputSpec]) -> None:
    """Raise a ConfigError when an image-only family is given no image (or audio) input."""
    if not any(spec.type in ("image", "audio") for spec in inputs):
        raise ConfigError(
            f"model.arch '{arch}' needs an image or audio input; use arch: mlp for tables"
        )


@register_model("cnn")
def build_cnn(
    config: CNNConfig, inputs: Sequence[InputSpec], outputs: Sequence[OutputSpec]
) -> FeatureModel:
    """Each image through its own conv stages; other inputs encoded by type; MLP; heads."""
    require_image_input("cnn", inputs)

    def backbone(spec: InputSpec) -> tuple[nn.Module, int]:
        if spec.variable_length:  # audio clips of their own length: padding masked out
            masked = MaskedCNN(spec, config.channels, config.kernel_size, config.activation)
            return masked, masked.stages.out_channels
        return conv_stages(spec, config.channels, config.kernel_size, config.activation)

    return FeatureModel(
        inputs,
        outputs,
        image_backbone=backbone,
        hidden=config.hidden,
        activation=config.activation,
        dropout=config.dropout,
    )
