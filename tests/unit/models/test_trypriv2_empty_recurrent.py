"""A private run's Poisson batch can draw no rows (often at small batches); the recurrent text
encoder packed its rows and PyTorch refuses to pack empty tensors, so a private LSTM / GRU text
model crashed with a traceback. An empty batch now runs the network unpacked."""

from __future__ import annotations

import pytest
import torch
from opacus import GradSampleModule

from megalith.data.features.encoding import SequenceEncoderConfig
from megalith.models.private_layers import make_private_safe
from megalith.models.sequence import RecurrentEncoder


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_an_empty_batch_gives_no_rows(kind: str) -> None:
    config = SequenceEncoderConfig(kind=kind, hidden=4, bidirectional=True)
    encoder = RecurrentEncoder(3, config)
    out = encoder(torch.zeros(0, 5, 3), torch.zeros(0, 5, dtype=torch.bool))
    assert out.shape == (0, 8)


def test_a_private_lstm_takes_an_empty_poisson_batch() -> None:
    encoder = make_private_safe(RecurrentEncoder(3, SequenceEncoderConfig(kind="lstm", hidden=4)))
    model = GradSampleModule(encoder)
    out = model(torch.zeros(0, 5, 3), torch.zeros(0, 5, dtype=torch.bool))
    (out.sum() * 0.0).backward()  # the loss of an empty batch (private_loss)
    assert out.shape == (0, encoder.out_features)
