"""The transformer combiner trains privately: Opacus gets a per-row gradient for every weight."""

from __future__ import annotations

from pathlib import Path

import torch
from model_check import random_batch

from megalith.data.specs import InputSpec, OutputSpec
from megalith.models import MLPConfig, build_model
from megalith.models.private_layers import make_private_safe
from megalith.run_weights import load_weights

TABLE = [
    InputSpec("size_kb", "number"),
    InputSpec("licence", "category", vocab_size=7, embedding_dim=4),
    InputSpec("summary", "text", vocab_size=20, shape=(5,), embedding_dim=4),
]
OUTPUTS = [OutputSpec("topic", "category", num_classes=3)]


def _model() -> torch.nn.Module:
    config = MLPConfig(
        hidden=[8], combiner="transformer", token_dim=8, combiner_heads=2, dropout=0.0,
        number_embedding="periodic",
    )  # fmt: skip
    return build_model(config, TABLE, OUTPUTS)


def test_the_transformer_combiner_gets_per_row_gradients_under_opacus() -> None:
    from opacus import GradSampleModule

    torch.manual_seed(0)
    model = GradSampleModule(make_private_safe(_model()), loss_reduction="mean")
    x, _ = random_batch(TABLE, OUTPUTS, batch_size=5)
    model(x)["topic"].sum().backward()  # failed: 'list' object has no attribute 'detach'
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            assert parameter.grad_sample is not None, name
            assert parameter.grad_sample.shape[0] == 5, name


def test_weights_saved_with_the_old_cls_name_still_load(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    state = _model().state_dict()
    state["fusion.cls"] = state.pop("fusion.cls.token")  # how the first release stored it
    save_file(state, tmp_path / "model.safetensors")
    model = _model()
    model.load_state_dict(load_weights(tmp_path / "model.safetensors", model))
    assert torch.equal(model.state_dict()["fusion.cls.token"], state["fusion.cls"])
