"""FSDP on a model with a binary head: its squeezed (B,) logit is a view, about which FSDP warns
at every training step of every process (hundreds of lines burying the epoch lines); the loop
never changes an output in place, so the warning is silenced, and only that warning."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.distributed as dist

from megalith.data.specs import InputSpec, OutputSpec
from megalith.models import MLPConfig, build_model
from megalith.training.distributed import Distributed


@pytest.fixture
def one_process_group(tmp_path):
    store = dist.FileStore(str(tmp_path / "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def test_fsdp_says_nothing_about_a_binary_heads_view(one_process_group):
    inputs = [InputSpec("x", "number", shape=(1,), mean=(0.0,), std=(1.0,))]
    outputs = [OutputSpec("y", "binary", num_classes=2)]
    model = build_model(MLPConfig(hidden=[4]), inputs, outputs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sharded = Distributed(world_size=2, sharded=True).wrap(model, torch.device("cpu"))
        logit = sharded({"x": torch.randn(3, 1)})["y"]
        logit.sum().backward()
        warnings.warn("another warning", UserWarning, stacklevel=1)
    messages = [str(warning.message) for warning in caught]
    assert not [message for message in messages if "returned a view tensor" in message]
    assert "another warning" in messages


def test_fsdp_shards_a_conv_net_whose_weights_were_stored_channels_last(one_process_group):
    """The loop stores conv weights channels-last before wrapping; FSDP refused them
    (NotImplementedError: non-contiguous parameters), so no cnn, resnet or crnn run trained."""
    from megalith.models import CNNConfig
    from megalith.models.cnn import use_channels_last

    image = InputSpec("image", "image", shape=(1, 8, 8), mean=(0.5,), std=(0.2,))
    outputs = [OutputSpec("label", "category", num_classes=3)]
    model = build_model(CNNConfig(channels=[4, 8], hidden=[8]), [image], outputs)
    use_channels_last(model, torch.device("cpu"))
    sharded = Distributed(world_size=2, sharded=True).wrap(model, torch.device("cpu"))
    logits = sharded({"image": torch.randint(0, 255, (2, 1, 8, 8), dtype=torch.uint8)})["label"]
    logits.sum().backward()
    assert logits.shape == (2, 3)
    use_channels_last(sharded, torch.device("cpu"))  # evaluation's batching calls it again
    assert sharded({"image": torch.zeros(1, 1, 8, 8, dtype=torch.uint8)})["label"].shape == (1, 3)
