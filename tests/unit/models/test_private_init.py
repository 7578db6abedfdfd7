"""Private training's small initial text embeddings (megalith.models.private_init)."""

from __future__ import annotations

import torch

from megalith.data.specs import InputSpec
from megalith.models.blocks import TextEncoder
from megalith.models.private_init import shrink_text_embeddings


def test_text_embeddings_are_scaled_with_a_notice_and_padding_stays_zero() -> None:
    torch.manual_seed(0)
    model = torch.nn.ModuleDict(
        {"text": TextEncoder(InputSpec(name="t", type="text", vocab_size=50, shape=(8,)))}
    )
    model["head"] = torch.nn.Linear(3, 2)
    before = model["text"].embedding.weight.detach().clone()
    head = model["head"].weight.detach().clone()
    lines: list[str] = []
    assert shrink_text_embeddings(model, 0.01, lines.append) == ["text"]
    after = model["text"].embedding.weight.detach()
    assert torch.equal(after, before * 0.01) and after[0].abs().sum() == 0
    assert torch.equal(model["head"].weight, head)  # other layers untouched
    assert len(lines) == 2 and "text token embeddings start at 0.01" in lines[0]
    assert "idf: true" in lines[1]  # the advice for an unweighted bag
    lines.clear()
    assert shrink_text_embeddings(model, 1.0, lines.append) == [] and len(lines) == 1
