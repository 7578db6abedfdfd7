"""Pruning to a MACs target (megalith.compress.macs_target): `amount` is the fraction of the
multiply-accumulates removed, every pruned layer keeps a multiple of 16 channels (ONNX Runtime's
blocked convolutions), and the widest plan that reaches the target is the one taken."""

from __future__ import annotations

import copy
import re

import pytest
import torch

from megalith.compress.channels import count_macs, prunable_layers, prune_with_ratios
from megalith.compress.macs_target import (
    ALIGN,
    kept_width,
    layer_ratios,
    plan_macs,
    prune_to_macs,
)
from megalith.data.specs import InputSpec, OutputSpec
from megalith.errors import ConfigError
from megalith.models import CNNConfig, ResNetConfig, build_model

pytest.importorskip("torch_pruning")
IMAGE = [InputSpec("image", "image", shape=(3, 16, 16), mean=(0.5,) * 3, std=(0.25,) * 3)]
LABEL = [OutputSpec("label", "category", num_classes=3)]


def _rows() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {"image": torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8)}


def test_kept_widths_are_whole_blocks_or_whole_channels() -> None:
    assert kept_width(32, 0.75) == 32 and kept_width(32, 0.74) == 16  # 24 is 1.5 blocks: up
    assert kept_width(128, 0.75) == 96 and kept_width(64, 0.7) == 48
    assert kept_width(64, 0.01) == ALIGN  # never below one block
    assert kept_width(24, 0.5) == 12  # narrower than two blocks: whole channels
    assert kept_width(8, 0.01) == 1 and kept_width(100, 1.0) == 100
    assert kept_width(100, 0.99) == 96  # rounded to whole blocks below keep 1


@pytest.mark.slow  # a dozen traced copies per plan
@pytest.mark.parametrize(
    "config",
    [
        CNNConfig(channels=[32, 64, 128], hidden=[64]),
        ResNetConfig(channels=[32, 64], blocks=[1, 1]),
    ],
    ids=["cnn", "resnet"],
)
def test_half_the_macs_go_with_aligned_widths_and_no_wider_plan_would_do(
    config: CNNConfig | ResNetConfig,
) -> None:
    model = build_model(config, IMAGE, LABEL).eval()
    rows = _rows()
    before = count_macs(model, rows)
    untouched = copy.deepcopy(model)
    plan = prune_to_macs(model, rows, 0.5)
    after = count_macs(model, rows)
    assert after == plan.macs_after <= 0.5 * before and plan.macs_before == before
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(c.out_channels % ALIGN == 0 for c in convs)
    assert [c.out_channels for c in convs] != [
        c.out_channels for c in untouched.modules() if isinstance(c, torch.nn.Conv2d)
    ]
    names = dict(model.named_modules())
    for name, (_, width) in plan.widths.items():
        layer = names[name]
        assert width == (
            layer.out_channels if hasattr(layer, "out_channels") else layer.out_features
        )
    # the next wider plan (a larger keep fraction that changes some width) misses the target
    wider = next(
        k / 64
        for k in range(int(plan.keep * 64) + 1, 65)
        if any(kept_width(w, k / 64) != kept_width(w, plan.keep) for w, _ in plan.widths.values())
    )
    prune_with_ratios(untouched, rows, layer_ratios(untouched, wider))
    assert count_macs(untouched, rows) > 0.5 * before
    with torch.no_grad():
        assert torch.isfinite(model(rows)["label"]).all()


def test_a_target_the_prunable_layers_cannot_reach_is_refused() -> None:
    model = build_model(CNNConfig(channels=[32, 64], hidden=[16]), IMAGE, LABEL).eval()
    widths = [layer.weight.shape[0] for layer in prunable_layers(model)]
    with pytest.raises(ConfigError, match=r"too little of the MACs.*--prune-by channels") as no:
        plan_macs(model, _rows(), 0.99)
    said = re.search(r"at most (\d\.\d+) can", str(no.value))
    assert said is not None
    most = float(said.group(1))  # the amount the message offers is one that works
    plan = plan_macs(model, _rows(), most)
    assert plan.macs_after <= (1 - most) * plan.macs_before
    assert [layer.weight.shape[0] for layer in prunable_layers(model)] == widths  # unchanged
