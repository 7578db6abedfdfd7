"""The small-embedding and idf notices name the input column, not the module (encoders.1)."""

from __future__ import annotations

import torch

from megalith.data.specs import InputSpec
from megalith.models.blocks import TextEncoder
from megalith.models.private_init import shrink_text_embeddings


def test_notices_name_the_text_column() -> None:
    text = TextEncoder(InputSpec(name="review", type="text", vocab_size=50, shape=(8,)))
    model = torch.nn.ModuleDict({"encoders": torch.nn.ModuleList([torch.nn.Linear(1, 1), text])})
    lines: list[str] = []
    changed = shrink_text_embeddings(model, 0.01, lines.append, ["age", "review"])
    assert changed == ["encoders.1"]
    assert lines[0].startswith("train.privacy: input 'review' token embeddings start at 0.01")
    assert lines[1].startswith("train.privacy: input 'review' is not idf-weighted")
    assert "encoders.1" not in " ".join(lines)
