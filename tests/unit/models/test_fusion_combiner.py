"""Fusion of mixed inputs: the transformer combiner, periodic numbers, modality dropout."""

from __future__ import annotations

import pytest
import torch
from model_check import check_model, random_batch

from megalith.data.specs import InputSpec, OutputSpec
from megalith.errors import ConfigError
from megalith.models import MLPConfig, build_model
from megalith.models.fusion import ModalityDropout

TABLE = [
    InputSpec("size_kb", "number"),
    InputSpec("files", "number"),
    InputSpec("wild", "binary"),
    InputSpec("licence", "category", vocab_size=7, embedding_dim=4),
    InputSpec("summary", "text", vocab_size=40, shape=(6,), embedding_dim=8),
]
OUTPUTS = [OutputSpec("topic", "category", num_classes=4), OutputSpec("stars", "number")]


@pytest.mark.slow
def test_transformer_combiner_passes_the_shared_model_check() -> None:
    config = MLPConfig(
        hidden=[16], combiner="transformer", token_dim=16, combiner_heads=2, dropout=0.0
    )
    x, y = random_batch(TABLE, OUTPUTS)
    model = check_model(lambda: build_model(config, TABLE, OUTPUTS), x, y, OUTPUTS)
    assert model.get_submodule("fusion").out_features == 16
    assert len(model.get_submodule("fusion.tokenizers")) == len(TABLE)  # one token per input


def test_periodic_numbers_with_modality_dropout_pass_the_shared_model_check() -> None:
    config = MLPConfig(hidden=[32], number_embedding="periodic", token_dim=8, modality_dropout=0.1)
    x, y = random_batch(TABLE, OUTPUTS)
    model = check_model(lambda: build_model(config, TABLE, OUTPUTS), x, y, OUTPUTS, max_ratio=0.8)
    assert model.get_submodule("encoders.0").out_features == 8


def test_modality_dropout_blanks_whole_inputs_in_training_and_is_off_in_eval() -> None:
    x, _ = random_batch(TABLE, OUTPUTS, batch_size=400)
    drop = ModalityDropout(TABLE, p=0.5)
    torch.manual_seed(0)
    blanked = drop.train()(x)
    for spec in TABLE:
        original, seen = x[spec.name], blanked[spec.name]
        rows_kept = (seen == original).reshape(len(seen), -1).all(dim=1)
        rows_zero = (seen == 0).reshape(len(seen), -1).all(dim=1)
        assert bool((rows_kept | rows_zero).all()), spec.name  # a row is whole or blank
        had_values = ~(original == 0).reshape(len(seen), -1).all(dim=1)
        share = float(rows_zero[had_values].float().mean())  # of the rows that could change
        assert 0.35 < share < 0.65, (spec.name, share)
    evaluated = drop.eval()(x)
    assert all(torch.equal(evaluated[name], x[name]) for name in x)


def test_a_model_with_modality_dropout_is_deterministic_in_eval_mode() -> None:
    config = MLPConfig(hidden=[16], modality_dropout=0.5, dropout=0.0)
    model = build_model(config, TABLE, OUTPUTS)
    x, _ = random_batch(TABLE, OUTPUTS)
    model.eval()
    with torch.no_grad():
        first, second = model(x), model(x)
    assert all(torch.equal(first[k], second[k]) for k in first)
    model.train()
    with torch.no_grad():
        a, b = model(x)["topic"], model(x)["topic"]
    assert not torch.equal(a, b)  # training blanks different inputs each call


def test_token_width_must_split_into_heads() -> None:
    config = MLPConfig(combiner="transformer", token_dim=10, combiner_heads=4)
    with pytest.raises(ConfigError, match="multiple of heads"):
        build_model(config, TABLE, OUTPUTS)
