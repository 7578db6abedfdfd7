"""The architecture record of a pruned model (megalith.models.widths), and what structured
pruning (megalith.compress.channels) removes: the weakest channels, found through the
dependency graph, leaving the outputs of a network whose weak channels are dead unchanged."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from megalith.compress.channels import count_macs, prune_channels
from megalith.data.specs import InputSpec, OutputSpec
from megalith.errors import RunError
from megalith.models import CNNConfig, MLPConfig, ResNetConfig, build_model
from megalith.models.widths import apply_widths, describe_widths

IMAGE = [InputSpec("image", "image", shape=(3, 8, 8), mean=(0.5,) * 3, std=(0.25,) * 3)]
TABLE = [InputSpec("size", "number"), InputSpec("color", "category", vocab_size=4)]
LABEL = [OutputSpec("label", "category", num_classes=3)]


def _rows(inputs: list[InputSpec]) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    if inputs is IMAGE:
        return {"image": torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)}
    return {"size": torch.randn(4), "color": torch.randint(0, 4, (4,))}


@pytest.mark.parametrize(
    ("config", "inputs"),
    [
        (CNNConfig(channels=[8, 16], hidden=[16]), IMAGE),
        (ResNetConfig(channels=[8, 16], blocks=[1, 1], hidden=[8]), IMAGE),
        (MLPConfig(hidden=[16, 8], batch_norm=True), TABLE),
    ],
    ids=["cnn", "resnet", "mlp"],
)
def test_a_pruned_model_rebuilds_from_config_record_and_weights(
    config: CNNConfig | ResNetConfig | MLPConfig, inputs: list[InputSpec], tmp_path: Path
) -> None:
    model = build_model(config, inputs, LABEL).eval()
    rows = _rows(inputs)
    before = (sum(p.numel() for p in model.parameters()), count_macs(model, rows))
    prune_channels(model, rows, 0.5)
    assert sum(p.numel() for p in model.parameters()) < before[0]
    assert count_macs(model, rows) < before[1]
    record = describe_widths(model, build_model(config, inputs, LABEL))
    assert record["modules"]  # some layer is narrower
    (tmp_path / "architecture.json").write_text(json.dumps(record))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, tmp_path / "w.st")
    rebuilt = build_model(config, inputs, LABEL)
    apply_widths(rebuilt, tmp_path / "architecture.json")
    rebuilt.load_state_dict(load_file(tmp_path / "w.st"))
    rebuilt.eval()
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(rows), model(rows), rtol=0, atol=0)


def test_the_dead_channels_are_the_ones_removed() -> None:
    """Half of a CNN's channels made dead (zero weights, zero batch-norm scale and shift, zero
    head columns): pruning half removes exactly those, so the outputs do not change."""
    model = build_model(CNNConfig(channels=[8], hidden=[]), IMAGE, LABEL).eval()
    conv, norm = model.encoders[0].backbone[0], model.encoders[0].backbone[1]
    head = model.heads[0].linear
    dead = torch.tensor([0, 2, 3, 6])
    with torch.no_grad():
        for tensor in (conv.weight, norm.weight, norm.bias):
            tensor[dead] = 0
        head.weight[:, dead] = 0
    rows = _rows(IMAGE)
    with torch.no_grad():
        expected = model(rows)["label"]
    pruned = copy.deepcopy(model)
    prune_channels(pruned, rows, 0.5)
    assert pruned.encoders[0].backbone[0].out_channels == 4
    alive = torch.tensor([1, 4, 5, 7])
    torch.testing.assert_close(pruned.encoders[0].backbone[0].weight, conv.weight[alive])
    with torch.no_grad():
        torch.testing.assert_close(pruned(rows)["label"], expected)


def test_a_record_wider_than_the_config_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "architecture.json"
    model = build_model(MLPConfig(hidden=[16]), TABLE, LABEL)
    first = next(name for name, m in model.named_modules() if isinstance(m, torch.nn.Linear))
    path.write_text(json.dumps({"format": 1, "modules": {first: {"in_features": 9}}}))
    with pytest.raises(RunError, match=f"{path}.*sizes of '{first}'"):
        apply_widths(model, path)
    path.write_text(json.dumps({"format": 1, "modules": {first: "wide"}}))
    with pytest.raises(RunError, match="must map layer names to their sizes"):
        apply_widths(model, path)
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(RunError, match="not valid JSON"):
        apply_widths(model, path)
