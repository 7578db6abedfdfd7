"""MLP: every input encoded by type (images flattened), concatenated, then dense layers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field, PositiveInt, field_validator
from torch import nn

from megalith.configbase import ConfigModel
from megalith.data.specs import InputSpec, OutputSpec
from megalith.models.blocks import FeatureModel, image_shape
from megalith.models.fusion import FusionSettings
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
    combiner: Literal["concat", "transformer"] = "concat"
    """How the inputs' encodings meet: concat (side by side), or transformer (each input a token
    plus [CLS], self-attention between them: FT-Transformer, Gorishniy et al. 2021)."""
    embedding_dropout: float = Field(default=0.0, ge=0, lt=1)
    """Dropout on the inputs' encodings (embeddings, bags) before the hidden layers."""
    modality_dropout: float = Field(default=0.0, ge=0, lt=1)
    """Training only: probability of blanking an input in a row (as if its cell were missing),
    so a column missing at prediction time degrades the prediction gracefully."""
    modality_dropout_by_input: dict[str, float] = {}
    """Per-input blanking probabilities, in [0, 1), that replace modality_dropout for the inputs
    named: e.g. {folder: 0.5} for a column the model would otherwise lean on alone."""
    number_embedding: Literal["none", "periodic"] = "none"
    """none (the scaled value itself) or periodic (learned sin / cos frequencies -> linear -> ReLU,
    "PLR" of Gorishniy et al. 2022)."""
    token_dim: PositiveInt = 64
    """transformer combiner: width of each input's token; periodic: width of a number's encoding."""
    combiner_layers: PositiveInt = 2
    """transformer combiner: attention blocks."""
    combiner_heads: PositiveInt = 4
    """transformer combiner: attention heads (token_dim must be a multiple)."""

    @field_validator("modality_dropout_by_input", mode="before")
    @classmethod
    def _flat_rates(cls, rates: Any) -> Any:
        """A nested mapping here is a column name with a dot split by --set: say to quote it."""
        if isinstance(rates, dict):
            for name, rate in rates.items():
                if isinstance(rate, dict):
                    inner = next(iter(rate), "")
                    raise ValueError(
                        f"'{name}' holds a mapping, not a rate; for a column named "
                        f"'{name}.{inner}' quote the name: --set "
                        f"'model.modality_dropout_by_input.\"{name}.{inner}\"=0.3'"
                    )
        return rates


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
        fusion=FusionSettings(
            combiner=config.combiner,
            modality_dropout=config.modality_dropout,
            modality_dropout_by_input=config.modality_dropout_by_input,
            number_embedding=config.number_embedding,
            token_dim=config.token_dim,
            layers=config.combiner_layers,
            heads=config.combiner_heads,
            dropout=config.dropout,
            embedding_dropout=config.embedding_dropout,
        ),
    )
