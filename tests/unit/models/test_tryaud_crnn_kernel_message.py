"""An even model.kernel_size is refused for the CRNN on an image too (its conv stages always
mask), in words that fit that case rather than naming variable-length audio alone."""

from __future__ import annotations

import pytest

from megalith.data.specs import InputSpec, OutputSpec
from megalith.errors import ConfigError
from megalith.models import CRNNConfig, build_model


def test_an_even_kernel_for_a_crnn_on_an_image_names_the_crnn():
    image = InputSpec("photo", "image", shape=(1, 12, 20), mean=(0.5,), std=(0.2,))
    label = [OutputSpec("label", "category", num_classes=3)]
    with pytest.raises(
        ConfigError, match=r"inputs\.photo: model\.arch crnn .* odd model\.kernel_size \(got 4\)"
    ):
        build_model(CRNNConfig(channels=[8], kernel_size=4), [image], label)
