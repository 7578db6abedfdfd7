"""The GPT compiles as one graph (no graph breaks, so no host sync inside its step): what the
GPU path relies on for speed. Checked with inductor on the CPU."""

from __future__ import annotations

import shutil

import pytest
import torch

from megalith.data.specs import OutputSpec
from megalith.models import GPTConfig, build_model


@pytest.mark.skipif(shutil.which("g++") is None, reason="inductor needs a C++ compiler on CPU")
def test_gpt_compiles_as_one_graph_with_the_same_outputs() -> None:
    output = OutputSpec("text", "text", num_classes=100)
    torch.manual_seed(0)
    model = build_model(GPTConfig(context=16, layers=2, heads=2, dim=32, dropout=0.0), [], [output])
    tokens = {"text": torch.randint(1, 100, (2, 16))}
    compiled = torch.compile(model, fullgraph=True)  # a graph break raises instead of splitting
    eager = model(tokens)["text"]
    fast = compiled(tokens)["text"]
    torch.testing.assert_close(fast, eager, atol=1e-4, rtol=1e-4)
    fast.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
