"""Sequence encoders for text: every kind through the shared model check, and padding ignored."""

from __future__ import annotations

import pytest
import torch
from model_check import check_model, random_batch

from megalith.data.specs import InputSpec, OutputSpec
from megalith.errors import ConfigError
from megalith.models import MLPConfig, build_model
from megalith.models.blocks import TextEncoder
from megalith.models.sequence import SequenceEncoderConfig

KINDS = ["bag", "cnn", "rnn", "lstm", "gru", "transformer"]
OUTPUTS = [OutputSpec("topic", "category", num_classes=3)]


def text_spec(kind: str, **options: object) -> InputSpec:
    encoder = SequenceEncoderConfig.model_validate({"kind": kind, "hidden": 16, **options})
    return InputSpec("notes", "text", vocab_size=50, shape=(12,), embedding_dim=16, encoder=encoder)


@pytest.mark.parametrize("kind", KINDS)
def test_every_text_encoder_passes_the_model_check(kind: str) -> None:
    inputs = [text_spec(kind), InputSpec("age", "number")]
    x, y = random_batch(inputs, OUTPUTS, batch_size=24)
    check_model(lambda: build_model(MLPConfig(hidden=[32]), inputs, OUTPUTS), x, y, OUTPUTS)


@pytest.mark.parametrize("kind", KINDS)
def test_more_padding_changes_nothing(kind: str) -> None:
    torch.manual_seed(0)
    encoder = TextEncoder(text_spec(kind, layers=2)).eval()
    tokens = torch.tensor([[5, 9, 3, 0, 0], [7, 0, 0, 0, 0], [0, 0, 0, 0, 0]])
    padded = torch.cat([tokens, torch.zeros(3, 4, dtype=torch.long)], dim=1)
    with torch.no_grad():
        short, long = encoder(tokens), encoder(padded)
    assert short.shape == (3, encoder.out_features)
    assert torch.isfinite(short).all()  # an all-padding row included
    torch.testing.assert_close(short, long, atol=1e-5, rtol=1e-5)


def test_tokens_in_another_order_change_the_rnn_but_not_the_bag() -> None:
    torch.manual_seed(0)
    forward = torch.tensor([[5, 9, 3, 8]])
    backward = forward.flip(1)
    bag, lstm = TextEncoder(text_spec("bag")).eval(), TextEncoder(text_spec("lstm")).eval()
    with torch.no_grad():
        torch.testing.assert_close(bag(forward), bag(backward))
        assert not torch.allclose(lstm(forward), lstm(backward))


def test_bidirectional_rnn_doubles_the_width() -> None:
    assert TextEncoder(text_spec("gru", bidirectional=True)).out_features == 32
    assert TextEncoder(text_spec("gru", bidirectional=False)).out_features == 16


def test_learned_positions_make_the_transformer_order_aware() -> None:
    torch.manual_seed(0)
    encoder = TextEncoder(text_spec("transformer", positions="learned")).eval()
    forward = torch.tensor([[5, 9, 3, 8]])
    with torch.no_grad():
        assert not torch.allclose(encoder(forward), encoder(forward.flip(1)))


def test_transformer_width_must_split_into_heads() -> None:
    with pytest.raises(ConfigError, match="multiple of heads"):
        TextEncoder(text_spec("transformer", heads=5))


def test_encoder_given_by_name_only() -> None:
    assert SequenceEncoderConfig.model_validate("lstm").kind == "lstm"


def test_idf_weighted_bag_is_a_normalised_weighted_sum() -> None:
    weights = tuple(float(i) for i in range(50))  # token i weighs i
    spec = InputSpec("t", "text", vocab_size=50, shape=(4,), embedding_dim=6, token_weights=weights)
    encoder = TextEncoder(spec)
    out = encoder(torch.tensor([[3, 5, 0, 0], [0, 0, 0, 0]]))
    table = encoder.embedding.weight
    expected = (3 * table[3] + 5 * table[5]) / (3**2 + 5**2) ** 0.5
    torch.testing.assert_close(out[0], expected)
    assert torch.equal(out[1], torch.zeros(6))  # all padding: zeros, not NaN


def test_idf_weighting_needs_the_bag_encoder() -> None:
    spec = text_spec("lstm")
    weighted = InputSpec(**{**spec.__dict__, "token_weights": (1.0,) * spec.vocab_size})
    with pytest.raises(ConfigError, match="idf weighting needs the bag encoder"):
        TextEncoder(weighted)
