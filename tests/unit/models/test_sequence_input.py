"""Sequence (time series) inputs: every encoder kind through the shared model check."""

from __future__ import annotations

import pytest
import torch
from model_check import check_model, random_batch

from megalith.data.specs import InputSpec, OutputSpec
from megalith.errors import ConfigError
from megalith.models import MLPConfig, build_model
from megalith.models.blocks import SequenceValuesEncoder, make_encoder
from megalith.models.sequence import SequenceEncoderConfig

KINDS = ["lstm", "gru", "cnn", "transformer", "bag"]
OUTPUTS = [OutputSpec("trend", "category", num_classes=3)]


def sequence_spec(kind: str, length: int = 12, **options: object) -> InputSpec:
    encoder = SequenceEncoderConfig.model_validate({"kind": kind, "hidden": 16, **options})
    return InputSpec("series", "sequence", shape=(length, 2), embedding_dim=16, encoder=encoder)


def steps(values: list[list[float]], length: int) -> torch.Tensor:
    """Rows of values -> float32 (B, length, 2) following the contract (right padding)."""
    out = torch.zeros(len(values), length, 2)
    for row, series in enumerate(values):
        out[row, : len(series), 0] = torch.tensor(series)
        out[row, : len(series), 1] = 1.0
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_every_sequence_encoder_passes_the_model_check(kind: str) -> None:
    inputs = [sequence_spec(kind), InputSpec("age", "number")]
    x, y = random_batch(inputs, OUTPUTS, batch_size=24)
    assert x["series"].shape == (24, 12, 2)
    check_model(lambda: build_model(MLPConfig(hidden=[32]), inputs, OUTPUTS), x, y, OUTPUTS)


def test_default_lstm_classifies_and_regresses_at_once() -> None:
    outputs = [*OUTPUTS, OutputSpec("slope", "number")]
    inputs = [InputSpec("series", "sequence", shape=(12, 2), embedding_dim=16)]  # no encoder
    x, y = random_batch(inputs, outputs, batch_size=24)
    model = check_model(lambda: build_model(MLPConfig(hidden=[32]), inputs, outputs), x, y, outputs)
    assert "LSTM" in repr(model)


@pytest.mark.parametrize("kind", KINDS)
def test_more_padding_changes_nothing(kind: str) -> None:
    torch.manual_seed(0)
    encoder = SequenceValuesEncoder(sequence_spec(kind, length=9, layers=2)).eval()
    rows = [[0.5, -1.0, 2.0], [1.5], []]
    with torch.no_grad():
        short, long = encoder(steps(rows, 5)), encoder(steps(rows, 9))
    assert short.shape == (3, encoder.out_features)
    assert torch.isfinite(short).all()  # the empty row included
    torch.testing.assert_close(short, long, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["lstm", "gru", "cnn"])
def test_order_matters_to_order_aware_kinds(kind: str) -> None:
    torch.manual_seed(0)
    encoder = SequenceValuesEncoder(sequence_spec(kind)).eval()
    rising, falling = steps([[1.0, 2.0, 3.0, 4.0]], 6), steps([[4.0, 3.0, 2.0, 1.0]], 6)
    with torch.no_grad():
        assert not torch.allclose(encoder(rising), encoder(falling))


def test_make_encoder_builds_the_sequence_encoder() -> None:
    encoder = make_encoder(sequence_spec("gru", bidirectional=False), lambda spec: (None, 0))
    assert isinstance(encoder, SequenceValuesEncoder) and encoder.out_features == 16


def test_unknown_input_type_lists_sequence_as_supported() -> None:
    with pytest.raises(ConfigError, match="sequence"):
        make_encoder(InputSpec("x", "video"), lambda spec: (None, 0))
