"""The automatic internal batch size comes from a memory budget measured on the model."""

from __future__ import annotations

import torch

from megalith.data.specs import InputSpec, OutputSpec
from megalith.explain.methods import (
    LARGEST_BATCH,
    MEMORY_PER_PASS,
    _saved_bytes,
    automatic_batch_size,
)
from megalith.explain.space import AttributedModel, InputSpace, input_spaces
from megalith.models.blocks import FeatureModel
from megalith.models.registry import build_model
from megalith.models.resnet import ResNetConfig

LABEL = OutputSpec("label", "category", num_classes=3)


def _image_model(side: int) -> tuple[AttributedModel, list[InputSpace], torch.Tensor]:
    spec = InputSpec("photo", "image", shape=(3, side, side), mean=(0.5,) * 3, std=(0.2,) * 3)
    torch.manual_seed(0)
    model = build_model(ResNetConfig(channels=[8, 16], blocks=[1, 1]), [spec], [LABEL])
    assert isinstance(model, FeatureModel)
    pixels = torch.randint(0, 256, (2, 3, side, side)).numpy()
    spaces = input_spaces(model.eval(), [spec], {"photo": pixels})
    return AttributedModel(model, [spec], LABEL).eval(), spaces, torch.tensor([0, 1])


def test_a_large_image_gets_few_pairs_per_pass_within_the_budget() -> None:
    forward, spaces, target = _image_model(64)
    size = automatic_batch_size(forward, spaces, target)
    per_pair = _saved_bytes(forward, spaces, target, 2) - _saved_bytes(forward, spaces, target, 1)
    assert per_pair > 3 * 64 * 64 * 4  # activations, not just the input, are counted
    assert 1 <= size < LARGEST_BATCH and size * per_pair <= MEMORY_PER_PASS
    small, small_spaces, _ = _image_model(16)
    assert automatic_batch_size(small, small_spaces, target) > 2 * size


def test_a_table_gets_the_largest_batch() -> None:
    specs = [InputSpec(f"x{i}", "number") for i in range(4)]
    model = build_model_mlp(specs)
    spaces = input_spaces(model, specs, {s.name: torch.randn(3).numpy() for s in specs})
    forward = AttributedModel(model, specs, LABEL).eval()
    assert automatic_batch_size(forward, spaces, torch.tensor([0, 1, 2])) == LARGEST_BATCH


def build_model_mlp(specs: list[InputSpec]) -> FeatureModel:
    from megalith.models.mlp import MLPConfig

    model = build_model(MLPConfig(hidden=[16]), specs, [LABEL])
    assert isinstance(model, FeatureModel)
    return model.eval()
