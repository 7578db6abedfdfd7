"""Vision Transformer: the shared model check, patches and padding, and its attention maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from model_check import check_model, random_batch

from megalith.data.specs import InputSpec, OutputSpec
from megalith.errors import ConfigError
from megalith.explain.attention import feature_attention
from megalith.models import ViTConfig, build_model
from megalith.models.blocks import FeatureModel, ImageEncoder
from megalith.models.vit import PatchEmbedding, VisionTransformer

DIGITS = [InputSpec("image", "image", shape=(1, 8, 8), mean=(0.3,), std=(0.35,))]
LABEL = [OutputSpec("label", "category", num_classes=10)]
SMALL = ViTConfig(patch_size=4, dim=16, depth=2, heads=2, dropout=0.0)


def test_vit_on_8x8_digits_gives_one_logit_per_class() -> None:
    x, _ = random_batch(DIGITS, LABEL, batch_size=4)
    assert build_model(SMALL, DIGITS, LABEL).eval()(x)["label"].shape == (4, 10)


def test_vit_on_odd_sized_rgb_with_a_table_column_passes_the_model_check() -> None:
    photo = InputSpec("photo", "image", shape=(3, 10, 7), mean=(0.5,) * 3, std=(0.2,) * 3)
    inputs = [photo, InputSpec("iso", "number")]
    outputs = [OutputSpec("scene", "category", num_classes=3), OutputSpec("blur", "number")]
    config = ViTConfig(patch_size=4, dim=8, depth=1, heads=2, hidden=[8], dropout=0.0)
    x, y = random_batch(inputs, outputs, batch_size=8)
    check_model(lambda: build_model(config, inputs, outputs), x, y, outputs)


def test_patches_cover_the_padded_image_row_by_row() -> None:
    embed = PatchEmbedding(channels=1, height=10, width=7, patch=4, dim=3)
    assert (embed.rows, embed.columns, embed.count) == (3, 2, 6)
    assert embed(torch.zeros(2, 1, 10, 7)).shape == (2, 6, 3)
    vit = VisionTransformer(DIGITS[0], SMALL)
    assert vit.token_labels() == ["[CLS]", "patch 0,0", "patch 0,1", "patch 1,0", "patch 1,1"]
    assert vit.positions.max_length == 5  # the class token and 4 patches, each its own position


def test_heads_must_divide_the_width_and_an_image_is_needed() -> None:
    with pytest.raises(ConfigError, match="multiple of heads"):
        build_model(ViTConfig(dim=10, heads=4), DIGITS, LABEL)
    with pytest.raises(ConfigError, match="needs an image or audio input"):
        build_model(SMALL, [InputSpec("size", "number")], LABEL)


def test_attention_maps_of_each_block_over_the_class_token_and_patches() -> None:
    torch.manual_seed(0)
    model = build_model(SMALL, DIGITS, LABEL).eval()
    assert isinstance(model, FeatureModel) and isinstance(model.encoders[0], ImageEncoder)
    pixels = np.random.default_rng(0).integers(0, 256, (3, 1, 8, 8), dtype=np.uint8)
    maps = feature_attention(model, DIGITS, [None], {"image": pixels}, ["a", "b", "c"])
    assert [m.row for m in maps] == ["a", "b", "c"]
    first = maps[0]
    assert first.tokens[0] == "[CLS]" and len(first.tokens) == 5
    assert first.weights.shape == (2, 2, 5, 5)  # (layers, heads, queries, keys)
    assert np.allclose(first.weights.sum(axis=-1), 1.0, atol=1e-5)
    assert not np.allclose(maps[0].weights, maps[1].weights)  # each row its own map
