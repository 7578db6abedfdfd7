"""A language model's randomisation check re-initialises one copy of the model for all the rows
it checks (a deep copy of the whole model was made and re-initialised per row: 32 copies of a
GPT-2 for one explanation), and the figures are the same as with a copy per row."""

from __future__ import annotations

import pytest
import torch

from megalith.data.specs import OutputSpec
from megalith.explain import language
from megalith.explain.causal_lm import NextToken, next_token_model
from megalith.explain.language import _next_token_attributions
from megalith.explain.timing import PartTimes
from megalith.models.gpt import GPT, GPTConfig


def test_one_randomised_copy_serves_every_row(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    config = GPTConfig(context=16, layers=1, heads=2, dim=8, dropout=0.0)
    model = GPT(config, OutputSpec("text", "text", num_classes=20)).eval()
    forward = next_token_model(model)
    made = []
    original = type(forward).randomised

    def counted(self: NextToken) -> NextToken:
        made.append(1)
        return original(self)

    monkeypatch.setattr(type(forward), "randomised", counted)
    kept: list[NextToken] = []
    documents = [[4, 5, 6], [7, 8, 9, 10], [3, 11, 12]]
    shared = [
        _next_token_attributions(forward, "text", ids, 7, 8, randomised=kept, times=PartTimes())
        for ids in documents
    ]
    assert len(made) == 1 and len(kept) == 1
    for ids, found in zip(documents, shared, strict=True):
        alone = _next_token_attributions(
            forward, "text", ids, 7, 8, randomised=[], times=PartTimes()
        )
        assert found["randomisation"] == pytest.approx(alone["randomisation"], nan_ok=True)
    skipped = _next_token_attributions(
        forward, "text", [4, 5], 7, 8, randomised=None, times=PartTimes()
    )
    assert skipped["randomisation"] != skipped["randomisation"]  # NaN: not checked
    assert language.RANDOMISATION_ROWS == 32
