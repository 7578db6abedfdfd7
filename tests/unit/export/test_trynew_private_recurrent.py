"""A private run's recurrent encoder (Opacus's DPLSTM / DPGRU) exports like nn.LSTM / nn.GRU."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from megalith.export.recurrent import _one_direction
from megalith.models.private_layers import make_private_safe


@pytest.mark.parametrize("kind", [nn.LSTM, nn.GRU])
def test_a_private_recurrent_layer_unrolls_to_the_same_numbers(kind: type[nn.RNNBase]) -> None:
    torch.manual_seed(0)
    private = make_private_safe(nn.Sequential(kind(4, 3, batch_first=True)))[0]
    assert type(private).__name__ == "DP" + kind.__name__  # has no `.mode`: export failed
    single = _one_direction(private, 0, "", 4)
    assert isinstance(single, kind)
    x = torch.randn(2, 5, 4)
    torch.testing.assert_close(single(x)[0], private.eval()(x)[0])
