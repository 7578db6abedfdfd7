"""A private LSTM (Opacus's DPLSTM) saves to safetensors and loads back: no aliased weights."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from megalith.models.private_layers import make_private_safe


def _model() -> nn.Module:
    return nn.Sequential(nn.LSTM(4, 3, bidirectional=True, batch_first=True))


def test_a_private_lstm_saves_its_weights_once_and_loads_them_back(tmp_path: Path) -> None:
    torch.manual_seed(0)
    trained = make_private_safe(_model())
    state = trained.state_dict()
    assert sorted(state) == sorted(_model().state_dict())  # nn.LSTM's names, each once
    save_file(state, tmp_path / "model.safetensors")  # failed: "Some tensors share memory"
    torch.manual_seed(1)
    loaded = make_private_safe(_model())
    loaded.load_state_dict(load_file(tmp_path / "model.safetensors"))
    x = torch.randn(2, 5, 4)
    assert torch.equal(loaded(x)[0][0], trained(x)[0][0])
