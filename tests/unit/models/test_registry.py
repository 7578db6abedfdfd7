"""The model registry: lookup by `model.arch`, helpful errors, and the config union."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from pydantic import TypeAdapter, ValidationError
from torch import nn

from megalith.data.specs import InputSpec, OutputSpec
from megalith.errors import ConfigError
from megalith.models import (
    CNNConfig,
    MLPConfig,
    ModelConfig,
    ResNetConfig,
    build_model,
    known_archs,
    registry,
)
from megalith.models.blocks import FeatureModel

NUMBER = [InputSpec("x", "number")]
LABEL = [OutputSpec("y", "category", num_classes=3)]


class _UnknownArch:
    arch = "mpl"


def test_the_families_register_themselves() -> None:
    assert {"mlp", "cnn", "resnet"} <= set(known_archs())
    assert known_archs() == sorted(known_archs())


def test_build_model_dispatches_on_arch() -> None:
    model = build_model(MLPConfig(hidden=[8]), NUMBER, LABEL)
    assert isinstance(model, FeatureModel)


def test_unknown_arch_suggests_the_closest_and_lists_the_known() -> None:
    with pytest.raises(ConfigError) as caught:
        build_model(_UnknownArch(), NUMBER, LABEL)
    message = str(caught.value)
    assert "model.arch" in message and "'mpl'" in message
    assert "did you mean 'mlp'" in message
    assert "cnn" in message and "resnet" in message


def test_registering_an_arch_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="already registered"):
        registry.register_model("mlp")(lambda config, inputs, outputs: nn.Identity())


def test_a_new_family_plugs_in_by_decorator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_BUILDERS", dict(registry._BUILDERS))

    class TinyConfig:
        arch = "tiny"

    @registry.register_model("tiny")
    def build_tiny(
        config: TinyConfig, inputs: Sequence[InputSpec], outputs: Sequence[OutputSpec]
    ) -> nn.Module:
        return nn.Linear(len(inputs), len(outputs))

    assert "tiny" in registry.known_archs()
    assert isinstance(registry.build_model(TinyConfig(), NUMBER, LABEL), nn.Linear)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"arch": "mlp", "hidden": [4]}, MLPConfig),
        ({"arch": "cnn", "channels": [8]}, CNNConfig),
        ({"arch": "resnet", "channels": [8, 16], "blocks": [1, 1]}, ResNetConfig),
    ],
)
def test_model_config_picks_the_family_by_arch(raw: dict[str, object], expected: type) -> None:
    assert isinstance(TypeAdapter(ModelConfig).validate_python(raw), expected)


def test_model_config_rejects_an_unknown_arch_and_a_foreign_key() -> None:
    adapter = TypeAdapter(ModelConfig)
    with pytest.raises(ValidationError):
        adapter.validate_python({"arch": "transformerz"})
    with pytest.raises(ValidationError):
        adapter.validate_python({"arch": "mlp", "channels": [8]})  # a cnn key on an mlp
