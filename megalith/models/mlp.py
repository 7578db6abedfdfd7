"""MLP: every input encoded by type (images flattened), concatenated, then dense layers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import Field, PositiveInt
from torch import nn

from megalith.configbase import ConfigModel
from megalith.data.specs import InputSpec, OutputSpec
from megalith.models.blocks import FeatureModel, image_shape
from megalith.models.registry import register_model


class MLPConfig(ConfigModel):
    """A multi-layer perceptron over all inputs."""

    arch: Literal["mlp"] = "mlp"
    hidden: list[PositiveInt] = [256, 128]
    """Widths of the hidden layers."""
    activation: Literal["relu", "gelu", "tanh", "sigmoid"] = "relu"
    """Activation after each hidden layer."""
    dropout: float = Field(default=0.1, ge=0, lt=1)
    """Dropout after each hidden layer."""
    batch_norm: bool = False
    """Batch normalisation before each activation."""


# -----------------------------------------------------------------------------
# image backbone and builder


def flatten_image_backbone(spec: InputSpec) -> tuple[nn.Module, int]:
    """Images as a vector of normalised pixels: (B, C, H, W) -> (B, C*H*W)."""
    channels, height, width = image_shape(spec)
    return nn.Flatten(), channels * height * width


@register_model("mlp")
def build_mlp(
    config: MLPConfig, inputs: Sequence[InputSpec], outputs: Sequence[OutputSpec]
) -> FeatureModel:
    """Every input encoded by type (images flattened) -> hidden layers -> one head per output."""
    return FeatureModel(
        inputs,
        outputs,
        image_backbone=flatten_image_backbone,
        hidden=config.hidden,
        activation=config.activation,
        dropout=config.dropout,
        batch_norm=config.batch_norm,
    )
