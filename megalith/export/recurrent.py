"""Recurrent encoders without packed sequences, for the exporter.

Training runs an RNN / LSTM / GRU over each row's real steps only (a PackedSequence), which the
ONNX exporter cannot trace. The same numbers come from padded tensors: the forward direction's
state at a row's last real step does not depend on the padding after it, and the backward
direction reads each row reversed in place (its real steps first, the padding after), so it
too starts on the row's last real step. Each layer and direction becomes a one-layer network
holding the trained weights; the export check then compares this graph against the packed model.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from megalith.models.sequence import RecurrentEncoder


class UnpackedRecurrent(nn.Module):
    """forward(x (B, L, D), mask (B, L)) -> (B, out_features), as `RecurrentEncoder` computes it."""

    def __init__(self, encoder: RecurrentEncoder) -> None:
        super().__init__()
        trained = encoder.rnn
        self.directions, self.out_features = encoder.directions, encoder.out_features
        self.num_layers = trained.num_layers
        self.networks = nn.ModuleList(  # layer by layer: forward, then backward
            _one_direction(trained, layer, suffix, _width(trained, layer, self.directions))
            for layer in range(trained.num_layers)
            for suffix in ("", "_reverse")[: self.directions]
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        lengths = mask.sum(dim=1).clamp(min=1)  # (B,), as packing counts them
        steps = torch.arange(x.shape[1], device=x.device)[None, :]  # (1, L)
        last = lengths[:, None] - 1  # (B, 1)
        # reverses each row's real steps in place; applied twice it is the identity
        reverse = torch.where(steps <= last, last - steps, steps)  # (B, L)
        finals: list[torch.Tensor] = []
        for layer in range(self.num_layers):
            outputs, finals = [], []
            for d in range(self.directions):
                network = self.networks[layer * self.directions + d]
                sequence = _take_steps(x, reverse) if d == 1 else x
                out, _ = network(sequence)  # (B, L, H)
                finals.append(_take_steps(out, last).squeeze(1))  # (B, H) at the last real step
                outputs.append(_take_steps(out, reverse) if d == 1 else out)
            x = torch.cat(outputs, dim=-1)  # (B, L, H * directions): the next layer's input
        return torch.cat(finals, dim=-1)


def _width(trained: nn.RNNBase, layer: int, directions: int) -> int:
    """The input width of `layer`: the features, then both directions' states."""
    return trained.input_size if layer == 0 else trained.hidden_size * directions


def _take_steps(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x (B, L, F) at the steps `index` (B, K) of each row -> (B, K, F)."""
    return torch.gather(x, 1, index[:, :, None].expand(-1, -1, x.shape[-1]))


def _one_direction(trained: nn.RNNBase, layer: int, suffix: str, width: int) -> nn.RNNBase:
    """A one-layer, one-direction copy of `trained`'s layer `layer` (suffix '_reverse': the
    backward direction), holding the same weights."""
    kinds = {"LSTM": nn.LSTM, "GRU": nn.GRU}
    mode = _mode(trained)
    network_type = kinds.get(mode, nn.RNN)
    nonlinearity = "relu" if mode == "RNN_RELU" else "tanh"
    options = {"nonlinearity": nonlinearity} if network_type is nn.RNN else {}
    single = network_type(
        width, trained.hidden_size, batch_first=True, bias=trained.bias, **options
    )
    names = ["weight_ih", "weight_hh", *(["bias_ih", "bias_hh"] if trained.bias else [])]
    with torch.no_grad():
        for name in names:
            getattr(single, f"{name}_l0").copy_(getattr(trained, f"{name}_l{layer}{suffix}"))
    return single.eval()


def without_packing(model: nn.Module) -> nn.Module:
    """A copy of `model` whose recurrent encoders run on padded tensors (the model itself is
    left as it is); the model when it has none."""
    if not any(isinstance(m, RecurrentEncoder) for m in model.modules()):
        return model
    model = copy.deepcopy(model)
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if isinstance(child, RecurrentEncoder):
                setattr(parent, name, UnpackedRecurrent(child))
    return model.eval()


def _mode(trained: nn.Module) -> str:
    """nn.RNNBase's `mode` (LSTM, GRU, RNN_TANH, RNN_RELU); a private run's Opacus DPLSTM /
    DPGRU / DPRNN (train.privacy) has none, but the same weights under the same names."""
    mode = getattr(trained, "mode", None)
    if isinstance(mode, str):
        return mode
    name = type(trained).__name__
    if name in ("DPLSTM", "DPGRU"):
        return name.removeprefix("DP")
    relu = getattr(trained, "cell_params", {}).get("nonlinearity") == "relu"
    return "RNN_RELU" if relu else "RNN_TANH"
