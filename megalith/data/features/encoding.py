"""How a text or number-sequence feature's steps become one vector: the encoder's settings.

The settings belong to the feature (`encoder:` in an input's config) and are read by the model
(megalith/models/sequence.py builds the encoder); they live here so that reading a feature's
config never imports torch (the runtime reads these configs without it).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, PositiveInt, model_validator

from megalith.configbase import ConfigModel

EncoderKind = Literal["bag", "cnn", "rnn", "lstm", "gru", "transformer"]


class SequenceEncoderConfig(ConfigModel):
    """How a sequence (text tokens, a time series) becomes one vector; `encoder: lstm` is short
    for `encoder: {kind: lstm}`."""

    kind: EncoderKind = "bag"
    """bag (mean of embeddings), cnn, rnn, lstm, gru or transformer."""
    hidden: int = Field(128, gt=0)
    """cnn: filters per width; rnn / lstm / gru: state size per direction."""
    layers: int = Field(1, gt=0)
    """rnn / lstm / gru / transformer: stacked layers."""
    bidirectional: bool = True
    """rnn / lstm / gru: also read the sequence backwards."""
    kernel_sizes: list[PositiveInt] = Field(default=[3, 4, 5], min_length=1)
    """cnn: convolution widths, each a separate branch."""
    heads: int = Field(4, gt=0)
    """transformer: attention heads; the embedding size must be a multiple."""
    positions: Literal["sinusoidal", "learned"] = "sinusoidal"
    """transformer: fixed sine / cosine positions, or learned ones."""
    dropout: float = Field(0.1, ge=0, lt=1)
    """Dropout inside the encoder (between layers)."""

    @model_validator(mode="before")
    @classmethod
    def _from_kind_name(cls, value: Any) -> Any:
        return {"kind": value} if isinstance(value, str) else value
