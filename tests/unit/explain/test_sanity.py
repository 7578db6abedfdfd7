"""The model-randomisation check: it passes for attributions of a trained model, and flags an
'explanation' that ignores the weights (the input itself)."""

from __future__ import annotations

import numpy as np
import torch

from megalith.data.specs import InputSpec, OutputSpec
from megalith.explain.methods import attribute
from megalith.explain.sanity import (
    RANK_CORRELATION_LIMIT,
    flattened,
    randomisation_summary,
    randomised_attributions,
    randomised_copy,
    rank_correlations,
    valid_elements,
)
from megalith.explain.space import AttributedModel, input_spaces
from megalith.models.blocks import FeatureModel
from megalith.models.mlp import MLPConfig
from megalith.models.registry import build_model

INPUTS = [InputSpec(f"x{i}", "number") for i in range(8)] + [
    InputSpec("kind", "category", vocab_size=5, embedding_dim=3)
]
OUTPUTS = [OutputSpec("label", "category", num_classes=2)]


def _trained() -> tuple[FeatureModel, dict[str, np.ndarray]]:
    """An MLP taught that the label is x0 + x1 > 0 (the other inputs are noise)."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    encoded = {f"x{i}": rng.normal(size=256).astype(np.float32) for i in range(8)}
    encoded["kind"] = rng.integers(1, 5, 256)
    label = torch.as_tensor((encoded["x0"] + encoded["x1"] > 0).astype(np.int64))
    model = build_model(MLPConfig(hidden=[16]), INPUTS, OUTPUTS)
    assert isinstance(model, FeatureModel)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    batch = {k: torch.as_tensor(v) for k, v in encoded.items()}
    for _ in range(150):
        loss = torch.nn.functional.cross_entropy(model(batch)["label"], label)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert float(loss.detach()) < 0.2
    return model.eval(), {k: v[:32] for k, v in encoded.items()}


def test_a_randomised_copy_has_new_weights_and_leaves_the_model_alone() -> None:
    model, _ = _trained()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fresh = randomised_copy(model)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    changed = [not torch.equal(before[k], v) for k, v in fresh.state_dict().items()]
    assert all(changed)
    again = randomised_copy(model)  # a fixed seed: the same copy each time
    pairs = zip(fresh.parameters(), again.parameters(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)


def test_trained_attributions_pass_and_the_input_itself_is_flagged() -> None:
    model, encoded = _trained()
    spaces = input_spaces(model, INPUTS, encoded)
    forward = AttributedModel(model, INPUTS, OUTPUTS[0]).eval()
    with torch.no_grad():
        target = model({k: torch.as_tensor(v) for k, v in encoded.items()})["label"].argmax(1)
    common = torch.as_tensor(encoded["kind"] == 1)  # rows at the category's baseline value
    for method in ("ig", "saliency"):
        valid = valid_elements(spaces, method)
        assert valid.shape == (32, 8 + 3) and bool(valid[:, :8].all())
        # ig gives a number at its baseline 0 in any model: such numbers are not compared
        assert torch.equal(valid[:, 8], ~common if method == "ig" else torch.ones(32).bool())
        trained = flattened(attribute(method, forward, spaces, target).values)
        randomised = randomised_attributions(
            model, INPUTS, OUTPUTS[0], method, spaces, target, steps=50, internal_batch_size=512
        )
        summary = randomisation_summary(rank_correlations(trained, randomised, valid))
        assert summary["passed"], (method, summary)
        assert summary["rank_correlation_mean"] < RANK_CORRELATION_LIMIT and summary["rows"] == 32
    # an 'explanation' that is the input itself does not change with the weights
    itself = flattened([space.values for space in spaces])
    summary = randomisation_summary(rank_correlations(itself, itself.clone(), valid))
    assert not summary["passed"] and summary["rank_correlation_mean"] == 1.0
    assert "untrustworthy" in summary["note"]
