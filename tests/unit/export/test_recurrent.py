"""The exporter's recurrent encoders on padded tensors equal the packed ones training uses."""

from __future__ import annotations

import pytest
import torch

from megalith.data.features.encoding import SequenceEncoderConfig
from megalith.export.recurrent import UnpackedRecurrent, without_packing
from megalith.models.sequence import RecurrentEncoder


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize(("layers", "bidirectional"), [(1, True), (2, True), (2, False)])
def test_unpacked_encoder_gives_the_packed_encoders_states(
    kind: str, layers: int, bidirectional: bool
) -> None:
    torch.manual_seed(0)
    config = SequenceEncoderConfig(kind=kind, hidden=6, layers=layers, bidirectional=bidirectional)
    packed = RecurrentEncoder(5, config).eval()
    x = torch.randn(4, 9, 5)
    mask = torch.zeros(4, 9, dtype=torch.bool)
    for row, length in enumerate([9, 4, 1, 0]):  # full, short, one step, empty (counted as 1)
        mask[row, :length] = True
    x[~mask] = 7.0  # padding that would change the states if it were read
    with torch.no_grad():
        expected = packed(x, mask)
        found = UnpackedRecurrent(packed)(x, mask)
    assert found.shape == expected.shape == (4, 6 * (2 if bidirectional else 1))
    torch.testing.assert_close(found, expected, atol=1e-6, rtol=1e-5)


def test_without_packing_swaps_encoders_in_a_copy() -> None:
    model = torch.nn.Sequential(RecurrentEncoder(3, SequenceEncoderConfig(kind="gru", hidden=4)))
    copied = without_packing(model)
    assert isinstance(model[0], RecurrentEncoder)
    assert isinstance(copied[0], UnpackedRecurrent)
    plain = torch.nn.Linear(2, 2)
    assert without_packing(plain) is plain
