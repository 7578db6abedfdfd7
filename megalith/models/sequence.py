"""Sequence encoders: a padded sequence of vectors (B, L, D) and its mask -> one vector (B, F).

Text inputs embed their tokens and hand them here; number sequences (time series) project each
step to D first. The encoder kind is chosen per input (`encoder:` in the input's config):

  bag          mean of the vectors over the real (non-padding) positions
  cnn          1-D convolutions of several widths, max over time
  rnn/lstm/gru a recurrent network (optionally bidirectional); its final states
  transformer  self-attention blocks with positions and a padding mask; mean over positions
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from megalith.data.features.encoding import SequenceEncoderConfig
from megalith.models.attention import Positions, TransformerBlock, check_heads


class SequenceEncoder(nn.Module):
    """Base: forward(x (B, L, D), mask (B, L) bool, True = real) -> (B, out_features)."""

    out_features: int


class BagEncoder(SequenceEncoder):
    """Mean over the real positions; an all-padding row gives zeros."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.out_features = dim

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return masked_mean(x, mask)


class ConvEncoder(SequenceEncoder):
    """Kim-style CNN: per width, Conv1d -> ReLU -> max over the real positions; concatenated."""

    def __init__(self, dim: int, config: SequenceEncoderConfig) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv1d(dim, config.hidden, size, padding=size // 2) for size in config.kernel_sizes
        )
        self.drop = nn.Dropout(config.dropout)
        self.out_features = config.hidden * len(config.kernel_sizes)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x.transpose(1, 2)  # (B, D, L)
        length = x.shape[2]
        keep = mask.unsqueeze(1)  # (B, 1, L)
        # after ReLU every value is >= 0, so zeroing the padding cannot beat a real maximum
        pooled = [(conv(x)[:, :, :length].relu() * keep).amax(dim=2) for conv in self.convs]
        return self.drop(torch.cat(pooled, dim=1))  # (B, hidden * widths)


class RecurrentEncoder(SequenceEncoder):
    """RNN / LSTM / GRU over the real positions only (packed); the last layer's final states."""

    def __init__(self, dim: int, config: SequenceEncoderConfig) -> None:
        super().__init__()
        network = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[config.kind]
        self.rnn = network(
            dim,
            config.hidden,
            num_layers=config.layers,
            batch_first=True,
            bidirectional=config.bidirectional,
            dropout=config.dropout if config.layers > 1 else 0.0,
        )
        self.directions = 2 if config.bidirectional else 1
        self.out_features = config.hidden * self.directions

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if x.shape[0] == 0:  # a private run's Poisson batch that drew no rows: packing
            _, state = self.rnn(x)  # refuses empty tensors, the network takes them
        else:
            # packing keeps the backward direction from starting on padding; lengths >= 1
            lengths = mask.sum(dim=1).clamp(min=1).cpu()  # a host sync, as packing needs
            packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            _, state = self.rnn(packed)
        final = state[0] if isinstance(state, tuple) else state  # LSTM: (h, c)
        last_layer = final[-self.directions :]  # (directions, B, H)
        return last_layer.transpose(0, 1).reshape(x.shape[0], self.out_features)


class TransformerEncoder(SequenceEncoder):
    """Positions -> pre-norm self-attention blocks with a padding mask -> mean over positions."""

    def __init__(self, dim: int, max_length: int, config: SequenceEncoderConfig, where: str):
        super().__init__()
        check_heads(dim, config.heads, where)
        self.positions = Positions(config.positions, max_length, dim)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(
            TransformerBlock(dim, config.heads, config.dropout) for _ in range(config.layers)
        )
        self.norm = nn.LayerNorm(dim)
        self.out_features = dim

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # position 0 always counts as real: a row of only padding would otherwise attend to
        # nothing, and softmax over nothing is NaN
        mask = torch.cat([torch.ones_like(mask[:, :1]), mask[:, 1:]], dim=1)
        attend = mask[:, None, None, :]  # (B, 1, 1, L): every query may see the real keys
        x = self.drop(self.positions(x))
        for block in self.blocks:
            x, _ = block(x, mask=attend)
        return masked_mean(self.norm(x), mask)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of x (B, L, D) over the positions where mask (B, L) is True -> (B, D)."""
    weights = mask.unsqueeze(-1).to(x.dtype)  # (B, L, 1)
    return (x * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1)


def build_sequence_encoder(
    config: SequenceEncoderConfig, dim: int, max_length: int, where: str
) -> SequenceEncoder:
    """The encoder `config.kind` names, for vectors of width `dim` and up to `max_length` steps."""
    if config.kind == "bag":
        return BagEncoder(dim)
    if config.kind == "cnn":
        return ConvEncoder(dim, config)
    if config.kind == "transformer":
        return TransformerEncoder(dim, max_length, config, where)
    return RecurrentEncoder(dim, config)
