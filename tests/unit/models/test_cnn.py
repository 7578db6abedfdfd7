"""CNN family: conv -> batch norm -> activation -> pool stages for each image input."""

from __future__ import annotations

import pytest
import torch
from model_check import check_model, random_batch
from torch import nn

from megalith.data.specs import InputSpec, OutputSpec
from megalith.errors import ConfigError
from megalith.models import CNNConfig, build_model

DIGITS = [InputSpec("image", "image", shape=(1, 8, 8), mean=(0.3,), std=(0.35,))]
LABEL = [OutputSpec("label", "category", num_classes=10)]
RGB = InputSpec("photo", "image", shape=(3, 32, 32), mean=(0.5, 0.4, 0.3), std=(0.2, 0.2, 0.2))


def test_cnn_on_8x8_digits_with_the_default_channels() -> None:
    config = CNNConfig(channels=[32, 64], hidden=[32])
    x, y = random_batch(DIGITS, LABEL)
    check_model(lambda: build_model(config, DIGITS, LABEL), x, y, LABEL)


def test_cnn_on_rgb_images_mixed_with_a_table_and_two_outputs() -> None:
    inputs = [RGB, InputSpec("iso", "number"), InputSpec("camera", "category", vocab_size=4)]
    outputs = [OutputSpec("scene", "category", num_classes=5), OutputSpec("blur", "number")]
    config = CNNConfig(channels=[8, 16], kernel_size=5, hidden=[16], dropout=0.0)
    x, y = random_batch(inputs, outputs, batch_size=8)
    check_model(lambda: build_model(config, inputs, outputs), x, y, outputs)


def test_deep_cnn_on_tiny_images_stops_pooling_at_1x1() -> None:
    model = build_model(CNNConfig(channels=[4, 4, 4, 4, 4, 4]), DIGITS, LABEL).eval()
    pools = [m for m in model.modules() if isinstance(m, nn.MaxPool2d)]
    assert len(pools) == 3  # 8 -> 4 -> 2 -> 1, then no more
    x, _ = random_batch(DIGITS, LABEL, batch_size=2)
    assert model(x)["label"].shape == (2, 10)


def test_even_kernels_keep_their_size_bookkeeping() -> None:
    model = build_model(CNNConfig(channels=[4, 4, 4, 4], kernel_size=2), DIGITS, LABEL).eval()
    x, _ = random_batch(DIGITS, LABEL, batch_size=2)
    assert model(x)["label"].shape == (2, 10)


def test_cnn_without_an_image_input_points_to_mlp() -> None:
    with pytest.raises(ConfigError, match=r"'cnn' needs an image or audio input; use arch: mlp"):
        build_model(CNNConfig(), [InputSpec("x", "number")], LABEL)


def test_cnn_gives_the_same_outputs_in_channels_last() -> None:
    inputs, outputs = [RGB], [OutputSpec("scene", "category", num_classes=5)]
    model = build_model(CNNConfig(channels=[8, 16]), inputs, outputs).eval()
    x, _ = random_batch(inputs, outputs, batch_size=4)
    with torch.no_grad():
        expected = model(x)["scene"]
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        pixels = x["photo"].contiguous(memory_format=torch.channels_last)
        actual = model({"photo": pixels})["scene"]
    assert torch.allclose(expected, actual, atol=1e-5)
