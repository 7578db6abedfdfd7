"""Shared layers: input encoders by type, the combiner, the heads and FeatureModel."""

from __future__ import annotations

import pytest
import torch
from model_check import check_model, random_batch
from torch import nn

from megalith.data.specs import InputSpec, OutputSpec
from megalith.errors import ConfigError
from megalith.models.blocks import (
    CategoryEncoder,
    FeatureModel,
    ImageEncoder,
    OutputHead,
    ScalarEncoder,
    TextEncoder,
    make_activation,
    make_combiner,
)
from megalith.models.mlp import flatten_image_backbone


def _identity_backbone(spec: InputSpec) -> tuple[nn.Module, int]:
    return nn.Identity(), 0


def test_scalar_encoder_makes_a_column() -> None:
    x = torch.tensor([1.0, 0.0, 2.5])
    assert torch.equal(ScalarEncoder()(x), x.unsqueeze(-1))


def test_category_encoder_embeds_each_index() -> None:
    encoder = CategoryEncoder(InputSpec("c", "category", vocab_size=5, embedding_dim=3))
    out = encoder(torch.tensor([0, 4, 4]))
    assert out.shape == (3, 3) and encoder.out_features == 3
    assert torch.equal(out[1], out[2])


def test_category_encoder_has_a_default_size_when_the_spec_gives_none() -> None:
    encoder = CategoryEncoder(InputSpec("c", "category", vocab_size=1000))
    assert 1 <= encoder.out_features <= 32


def test_text_encoder_averages_tokens_and_ignores_padding() -> None:
    encoder = TextEncoder(InputSpec("t", "text", vocab_size=10, shape=(4,), embedding_dim=6))
    tokens = torch.tensor([[3, 5, 0, 0], [3, 5, 7, 0], [0, 0, 0, 0]])
    out = encoder(tokens)  # (3, 6)
    table = encoder.embedding.weight
    assert torch.allclose(out[0], (table[3] + table[5]) / 2)
    assert torch.allclose(out[1], (table[3] + table[5] + table[7]) / 3)
    assert torch.equal(out[2], torch.zeros(6))  # all padding -> zeros, not NaN
    longer = encoder(torch.tensor([[3, 5, 0, 0, 0, 0]]))  # more padding changes nothing
    assert torch.allclose(longer[0], out[0])


def test_image_encoder_normalises_with_the_spec_statistics() -> None:
    spec = InputSpec("im", "image", shape=(2, 2, 2), mean=(0.5, 0.25), std=(0.5, 0.25))
    encoder = ImageEncoder(spec, _identity_backbone)
    pixels = torch.tensor([[[[0, 255], [128, 64]], [[0, 255], [128, 64]]]], dtype=torch.uint8)
    out = encoder(pixels)
    scaled = pixels.float() / 255
    assert torch.allclose(out[0, 0], (scaled[0, 0] - 0.5) / 0.5)
    assert torch.allclose(out[0, 1], (scaled[0, 1] - 0.25) / 0.25)
    assert "mean" not in encoder.state_dict()  # derived from the spec, not a weight


def test_image_encoder_rejects_stats_of_the_wrong_length() -> None:
    spec = InputSpec("im", "image", shape=(3, 4, 4), mean=(0.5,), std=(0.5,))
    with pytest.raises(ConfigError, match=r"inputs\.im"):
        ImageEncoder(spec, _identity_backbone)


def test_combiner_layers_in_order() -> None:
    combiner = make_combiner(10, [8, 4], "gelu", dropout=0.1, batch_norm=True)
    kinds = [type(layer) for layer in combiner]
    assert kinds == [nn.Linear, nn.BatchNorm1d, nn.GELU, nn.Dropout] * 2
    assert combiner(torch.randn(5, 10)).shape == (5, 4)
    assert len(make_combiner(10, [], "relu", 0.0, False)) == 0


@pytest.mark.parametrize(
    ("spec", "shape"),
    [
        (OutputSpec("y", "category", num_classes=4), (3, 4)),
        (OutputSpec("y", "binary", num_classes=2), (3,)),
        (OutputSpec("y", "number"), (3,)),
    ],
)
def test_heads_follow_the_output_contract(spec: OutputSpec, shape: tuple[int, ...]) -> None:
    assert OutputHead(spec, 7)(torch.randn(3, 7)).shape == shape


def test_unsupported_types_and_activations_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="audio"):
        FeatureModel([InputSpec("a", "audio")], [OutputSpec("y", "number")], _identity_backbone)
    with pytest.raises(ConfigError, match="ranking"):
        OutputHead(OutputSpec("y", "ranking"), 3)
    with pytest.raises(ConfigError, match="swish"):
        make_activation("swish")


def test_feature_model_mixes_every_input_type_and_several_outputs() -> None:
    inputs = [
        InputSpec("age.years", "number"),  # a '.' in a name must not break the module tree
        InputSpec("member", "binary"),
        InputSpec("city", "category", vocab_size=6, embedding_dim=4),
        InputSpec("review", "text", vocab_size=30, shape=(7,), embedding_dim=8),
        InputSpec("photo", "image", shape=(1, 8, 8), mean=(0.3,), std=(0.2,)),
    ]
    outputs = [
        OutputSpec("kind", "category", num_classes=3),
        OutputSpec("churned", "binary", num_classes=2),
        OutputSpec("spend", "number", mean=10.0, std=2.0),
    ]
    x, y = random_batch(inputs, outputs)

    def make() -> FeatureModel:
        return FeatureModel(inputs, outputs, flatten_image_backbone, hidden=[32], dropout=0.1)

    check_model(make, x, y, outputs)


def test_each_image_input_gets_its_own_backbone() -> None:
    inputs = [InputSpec(name, "image", shape=(1, 4, 4)) for name in ("left", "right")]

    def backbone(spec: InputSpec) -> tuple[nn.Module, int]:
        return nn.Sequential(nn.Flatten(), nn.Linear(16, 2)), 2

    model = FeatureModel(inputs, [OutputSpec("y", "number")], backbone)
    first, second = (model.get_submodule(f"encoders.{i}.backbone.1") for i in (0, 1))
    assert isinstance(first, nn.Linear) and isinstance(second, nn.Linear)
    assert first is not second
    assert first.weight.data_ptr() != second.weight.data_ptr()
