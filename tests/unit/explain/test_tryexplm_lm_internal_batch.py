"""--internal-batch-size bounds a language model's explanation too: it was silently ignored
(4,096 / the document's tokens steps per pass whatever was given), so a user short of memory
had no way to lower it."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
import torch

from megalith.data.specs import OutputSpec
from megalith.explain import explain_run, language
from megalith.explain.causal_lm import next_token_model
from megalith.explain.timing import PartTimes
from megalith.models.gpt import GPT, GPTConfig


def _gpt() -> GPT:
    torch.manual_seed(0)
    config = GPTConfig(context=16, layers=1, heads=2, dim=8, dropout=0.0)
    return GPT(config, OutputSpec("text", "text", num_classes=20)).eval()


def test_the_given_size_reaches_every_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    sizes: list[int] = []
    original = language.attribute

    def spied(*args: Any, **kwargs: Any) -> Any:
        sizes.append(kwargs["internal_batch_size"])
        return original(*args, **kwargs)

    monkeypatch.setattr(language, "attribute", spied)
    forward = next_token_model(_gpt())
    language._next_token_attributions(
        forward, "text", [4, 5, 6], 7, 8, randomised=[], times=PartTimes(), internal_batch_size=3
    )
    assert sizes == [3, 3]  # the explanation and the randomised model's
    sizes.clear()
    language._next_token_attributions(
        forward, "text", [4, 5, 6], 7, 8, randomised=None, times=PartTimes()
    )
    assert sizes == [4096 // 3]  # the default


def test_explain_run_passes_it_on(monkeypatch: pytest.MonkeyPatch) -> None:
    given: dict[str, Any] = {}

    def fake(run: Any, frame: Any, origin: str, method: str, steps: int, size: Any) -> Any:
        given["size"] = size
        return SimpleNamespace(summary={})

    monkeypatch.setattr(language, "explain_language_model", fake)
    run: Any = SimpleNamespace(
        model=_gpt(), config=SimpleNamespace(model=SimpleNamespace(arch="gpt"))
    )
    explain_run(run, pd.DataFrame({"text": ["a b"]}), internal_batch_size=5)
    assert given["size"] == 5
