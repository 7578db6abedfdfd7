"""CNNs on CPU run channels-last (`use_channels_last`): the same values, the faster kernels.

The kernel checks are functional, not timed: the profiler names the convolution kernel that ran
(oneDNN's `aten::mkldnn_convolution` or PyTorch's reference `aten::_slow_conv2d_forward`), and a
convolution's output layout tells its NHWC kernels from its NCHW ones.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from model_check import random_batch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from megalith.batching import forward_in_batches
from megalith.data.specs import InputSpec, OutputSpec
from megalith.data.tensors import TensorTable
from megalith.models import CNNConfig, ResNetConfig, build_model
from megalith.models.cnn import use_channels_last

CPU = torch.device("cpu")
LABEL = [OutputSpec("label", "category", num_classes=10)]
DIGITS = [InputSpec("image", "image", shape=(1, 8, 8), mean=(0.3,), std=(0.35,))]
PHOTO = [InputSpec("image", "image", shape=(3, 64, 64), mean=(0.5,) * 3, std=(0.25,) * 3)]
# the digits CNN of the examples, and a ResNet on 64x64 images with the ImageNet stem
MODELS = {
    "digits-cnn": (CNNConfig(channels=[32, 64], hidden=[128]), DIGITS),
    "resnet-64": (ResNetConfig(channels=[16, 32, 64], blocks=[1, 1, 1]), PHOTO),
}


def _model(name: str) -> tuple[nn.Module, list[InputSpec]]:
    config, inputs = MODELS[name]
    torch.manual_seed(0)
    return build_model(config, inputs, LABEL), inputs


@contextmanager
def _conv_layouts() -> Iterator[list[bool]]:
    """Records, for every 2-D convolution that runs, whether its output is channels-last."""
    layouts: list[bool] = []

    def record(module: nn.Module, args: object, output: torch.Tensor) -> None:
        if isinstance(module, nn.Conv2d):
            layouts.append(output.is_contiguous(memory_format=torch.channels_last))

    handle = nn.modules.module.register_module_forward_hook(record)
    try:
        yield layouts
    finally:
        handle.remove()


def _kernels(run: object) -> set[str]:
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run()  # type: ignore[operator]
    return {event.key for event in prof.key_averages() if "conv" in event.key}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_channels_last_gives_the_same_outputs_and_gradients(name: str) -> None:
    model, inputs = _model(name)
    fast = copy.deepcopy(model)
    use_channels_last(fast, CPU)
    assert all(
        m.weight.is_contiguous(memory_format=torch.channels_last)
        for m in fast.modules()
        if isinstance(m, nn.Conv2d)
    )
    x, y = random_batch(inputs, LABEL, batch_size=8)
    outputs = []
    for net in (model, fast):  # training mode: batch statistics, the same dropout mask
        torch.manual_seed(1)
        outputs.append(net(x)["label"])
        F.cross_entropy(outputs[-1], y["label"]).backward()
    assert torch.allclose(outputs[0], outputs[1], rtol=1e-4, atol=1e-5)
    with torch.no_grad():  # eval mode: running statistics
        expected, actual = model.eval()(x)["label"], fast.eval()(x)["label"]
    assert torch.allclose(expected, actual, rtol=1e-4, atol=1e-5)
    for (key, p), q in zip(model.named_parameters(), fast.parameters(), strict=True):
        assert p.grad is not None and q.grad is not None
        assert torch.allclose(p.grad, q.grad, rtol=1e-3, atol=1e-5), key


@pytest.mark.parametrize("name", sorted(MODELS))
def test_training_on_cpu_runs_onednn_convolutions_in_nhwc(name: str) -> None:
    model, inputs = _model(name)
    use_channels_last(model, CPU)
    x, y = random_batch(inputs, LABEL, batch_size=16)
    with _conv_layouts() as layouts:
        kernels = _kernels(lambda: F.cross_entropy(model(x)["label"], y["label"]).backward())
    assert "aten::mkldnn_convolution" in kernels
    assert "aten::_slow_conv2d_forward" not in kernels
    assert layouts and all(layouts)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_predict_at_batch_1_runs_every_convolution_in_nhwc(name: str) -> None:
    # at batch 1 PyTorch keeps its reference kernel for small inputs (oneDNN measured slower
    # there); channels-last makes it take that kernel's NHWC path, ~1.9x on a ResNet-18 shape
    model, inputs = _model(name)
    x, _ = random_batch(inputs, LABEL, batch_size=1)
    table = TensorTable(inputs=x, targets={}, rows=np.arange(1))
    with _conv_layouts() as before:
        model.eval()(x)
    assert before and not any(before)  # torch's default: NCHW weights, NCHW kernels
    with _conv_layouts() as layouts:
        forward_in_batches(model, table, batch_size=1, device=CPU, dtype=None)
    assert len(layouts) == len(before) and all(layouts)


def test_models_without_2d_convolutions_and_other_devices_are_left_alone() -> None:
    cnn, _ = _model("digits-cnn")
    use_channels_last(cnn, torch.device("meta"))
    assert all(p.is_contiguous() for p in cnn.parameters())
    conv1d = nn.Conv1d(4, 4, 3)
    use_channels_last(conv1d, CPU)
    assert conv1d.weight.is_contiguous()
