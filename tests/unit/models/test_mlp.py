"""MLP family: tables, text and flattened images through dense layers."""

from __future__ import annotations

import pytest
import torch
from model_check import check_model, random_batch
from torch import nn

from megalith.data.specs import InputSpec, OutputSpec
from megalith.models import MLPConfig, build_model

TABLE = [
    InputSpec("petal_length", "number"),
    InputSpec("petal_width", "number"),
    InputSpec("wild", "binary"),
    InputSpec("region", "category", vocab_size=5, embedding_dim=3),
    InputSpec("notes", "text", vocab_size=40, shape=(6,), embedding_dim=8),
]
DIGITS = [InputSpec("image", "image", shape=(1, 8, 8), mean=(0.3,), std=(0.35,))]


def test_mlp_on_a_mixed_table_with_three_kinds_of_output() -> None:
    outputs = [
        OutputSpec("species", "category", num_classes=3),
        OutputSpec("rare", "binary", num_classes=2),
        OutputSpec("height", "number"),
    ]
    config = MLPConfig(hidden=[32, 16], dropout=0.1, batch_norm=True)
    x, y = random_batch(TABLE, outputs)
    check_model(lambda: build_model(config, TABLE, outputs), x, y, outputs)


def test_mlp_regression_on_numbers_only() -> None:
    inputs = TABLE[:2]
    outputs = [OutputSpec("price", "number", mean=3.0, std=2.0)]
    config = MLPConfig(hidden=[16], activation="tanh", dropout=0.0)
    x, _ = random_batch(inputs, outputs)
    # two features cannot memorise noise; a smooth function of them is learnable
    y = {"price": x["petal_length"] - 2.0 * torch.tanh(x["petal_width"])}
    check_model(lambda: build_model(config, inputs, outputs), x, y, outputs)


def test_mlp_flattens_greyscale_digits() -> None:
    outputs = [OutputSpec("label", "category", num_classes=10)]
    config = MLPConfig(hidden=[64], activation="gelu")
    x, y = random_batch(DIGITS, outputs)
    model = check_model(lambda: build_model(config, DIGITS, outputs), x, y, outputs)
    first_linear = model.get_submodule("combiner.0")
    assert (
        isinstance(first_linear, nn.Linear) and first_linear.in_features == 64
    )  # 1 x 8 x 8 pixels


def _compiled_matches_eager(backend: str) -> None:
    outputs = [OutputSpec("species", "category", num_classes=3), OutputSpec("h", "number")]
    model = build_model(MLPConfig(hidden=[16]), TABLE, outputs).eval()
    x, _ = random_batch(TABLE, outputs, batch_size=4)
    # fullgraph: a graph break (data-dependent Python control flow) fails the test
    compiled = torch.compile(model, backend=backend, fullgraph=True)
    with torch.no_grad():
        eager, traced = model(x), compiled(x)
    for name in eager:
        assert torch.allclose(eager[name], traced[name], atol=1e-5)


def test_mlp_traces_as_one_graph() -> None:
    _compiled_matches_eager("aot_eager")  # graph capture only: seconds, no C++ compiler


@pytest.mark.slow
def test_mlp_compiles_with_inductor() -> None:
    _compiled_matches_eager("inductor")  # ~30 s on 2 CPU cores, mostly C++ compilation
