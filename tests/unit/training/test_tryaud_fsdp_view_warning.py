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
