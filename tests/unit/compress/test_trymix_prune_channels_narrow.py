"""prune_by channels at a high amount keeps at least one channel of every prunable layer; it
does not leave a narrow layer whole because int(width * (1 - amount)) is 0."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from megalith.compress.channels import count_macs, prunable_layers, prune_channels
from megalith.data.specs import InputSpec, OutputSpec
from megalith.models import CNNConfig, build_model
from megalith.models.blocks import FeatureModel

pytest.importorskip("torch_pruning")
IMAGE = [InputSpec("image", "image", shape=(1, 8, 8), mean=(0.5,), std=(0.25,))]
LABEL = [OutputSpec("label", "category", num_classes=3)]


def _cnn() -> FeatureModel:
    model = build_model(CNNConfig(channels=[32, 64], hidden=[128]), IMAGE, LABEL).eval()
    assert isinstance(model, FeatureModel)
    return model


def test_a_high_amount_keeps_one_channel_of_every_layer() -> None:
    model = _cnn()
    rows = {"image": torch.randint(0, 256, (2, 1, 8, 8), dtype=torch.uint8)}
    before = count_macs(model, rows)
    prune_channels(model, rows, 0.99)  # 32 * 0.01 and 64 * 0.01 round down to 0
    widths = [
        layer.out_channels if isinstance(layer, nn.Conv2d) else layer.out_features
        for layer in prunable_layers(model)
    ]
    assert widths == [1, 1, 1]  # 128 * 0.01 = 1.28 -> 1
    assert count_macs(model, rows) < 0.05 * before
    assert model(rows)["label"].shape == (2, 3)


def test_an_ordinary_amount_rounds_down_as_before() -> None:
    model = _cnn()
    rows = {"image": torch.randint(0, 256, (2, 1, 8, 8), dtype=torch.uint8)}
    prune_channels(model, rows, 0.3)
    convs = [m.out_channels for m in prunable_layers(model) if isinstance(m, nn.Conv2d)]
    assert convs == [22, 44]
