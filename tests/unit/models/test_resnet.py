"""ResNet family: stem, residual stages of basic or bottleneck blocks, global average pool."""

from __future__ import annotations

import pytest
import torch
from model_check import check_model, random_batch
from torch import nn

from megalith.data.specs import InputSpec, OutputSpec
from megalith.errors import ConfigError
from megalith.models import ResNetConfig, build_model
from megalith.models.resnet import BasicBlock, Bottleneck

DIGITS = [InputSpec("image", "image", shape=(1, 8, 8), mean=(0.3,), std=(0.35,))]
LABEL = [OutputSpec("label", "category", num_classes=10)]
RGB = InputSpec("photo", "image", shape=(3, 32, 32), mean=(0.5, 0.4, 0.3), std=(0.2, 0.2, 0.2))


def _backbone(model: nn.Module) -> nn.Sequential:
    backbone = model.get_submodule("encoders.0.backbone")
    assert isinstance(backbone, nn.Sequential)
    return backbone


def test_resnet_on_8x8_digits() -> None:
    config = ResNetConfig(channels=[8, 16, 32], blocks=[1, 1, 1])
    x, y = random_batch(DIGITS, LABEL)
    check_model(lambda: build_model(config, DIGITS, LABEL), x, y, LABEL)


def test_resnet_on_rgb_with_a_number_input_and_a_regression_head() -> None:
    inputs = [RGB, InputSpec("exposure", "number")]
    outputs = [OutputSpec("scene", "category", num_classes=4), OutputSpec("age", "number")]
    config = ResNetConfig(channels=[8, 16], blocks=[2, 1], hidden=[16])
    x, y = random_batch(inputs, outputs, batch_size=8)
    check_model(lambda: build_model(config, inputs, outputs), x, y, outputs)


def test_small_bottleneck_resnet_trains() -> None:
    config = ResNetConfig(channels=[16, 32], blocks=[1, 1], bottleneck=True)
    x, y = random_batch(DIGITS, LABEL)
    check_model(lambda: build_model(config, DIGITS, LABEL), x, y, LABEL)


def test_blocks_start_as_identity_and_project_when_the_shape_changes() -> None:
    model = build_model(ResNetConfig(channels=[8, 16], blocks=[2, 1]), DIGITS, LABEL)
    blocks = [m for m in model.modules() if isinstance(m, BasicBlock)]
    assert len(blocks) == 3
    assert isinstance(blocks[0].shortcut, nn.Identity)
    assert isinstance(blocks[2].shortcut, nn.Sequential)  # 8 -> 16 channels, stride 2
    assert blocks[2].residual[0].stride == (2, 2)
    for block in blocks:
        last_norm = block.residual[-1]
        assert isinstance(last_norm, nn.BatchNorm2d)
        assert torch.count_nonzero(last_norm.weight) == 0


def test_resnet50_shape_with_bottlenecks() -> None:
    config = ResNetConfig(channels=[256, 512, 1024, 2048], blocks=[3, 4, 6, 3], bottleneck=True)
    image = InputSpec("image", "image", shape=(3, 64, 64), mean=(0.5,) * 3, std=(0.25,) * 3)
    model = build_model(config, [image], LABEL).eval()
    backbone = _backbone(model)
    params = sum(p.numel() for p in backbone.parameters())
    assert abs(params - 23_508_032) / 23_508_032 < 0.01  # torchvision resnet50 without fc
    assert sum(isinstance(m, Bottleneck) for m in backbone.modules()) == 16
    stem = backbone[0]
    assert isinstance(stem, nn.Conv2d) and stem.kernel_size == (7, 7) and stem.out_channels == 64
    x, _ = random_batch([image], LABEL, batch_size=1)
    with torch.no_grad():
        assert model(x)["label"].shape == (1, 10)


def test_small_images_get_a_3x3_stem() -> None:
    model = build_model(ResNetConfig(channels=[8], blocks=[1]), [RGB], LABEL)
    stem = _backbone(model)[0]
    assert isinstance(stem, nn.Conv2d) and stem.kernel_size == (3, 3) and stem.stride == (1, 1)


def test_resnet_without_an_image_input_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"model\.arch 'resnet' needs an image or audio input"):
        build_model(ResNetConfig(), [InputSpec("x", "number")], LABEL)


def test_mismatched_blocks_and_channels_are_rejected() -> None:
    with pytest.raises(ValueError, match="one block count per stage"):
        ResNetConfig(channels=[8, 16], blocks=[1])


def test_activation_checkpointing_gives_the_same_gradients() -> None:
    from megalith.models.blocks import enable_activation_checkpointing

    inputs = [InputSpec("image", "image", shape=(3, 16, 16), mean=(0.5,) * 3, std=(0.25,) * 3)]
    outputs = [OutputSpec("label", "category", num_classes=4)]
    config = ResNetConfig(channels=[8, 16], blocks=[2, 1])
    images = torch.randint(0, 256, (6, 3, 16, 16), dtype=torch.uint8)
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    grads = []
    for recompute in (False, True):
        torch.manual_seed(0)
        model = build_model(config, inputs, outputs)
        if recompute:
            assert enable_activation_checkpointing(model) == 3
        loss = torch.nn.functional.cross_entropy(model({"image": images})["label"], labels)
        loss.backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for plain, recomputed in zip(*grads, strict=True):
        torch.testing.assert_close(plain, recomputed)
