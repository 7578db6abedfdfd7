"""A seq2seq source longer than the input's max_length: the row says how many words the model
never read (source_words_cut), and explain.html says so above the row's table."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import torch

from megalith.data.specs import InputSpec, OutputSpec
from megalith.data.tokenizers import fit_tokenizer
from megalith.explain import Explanations
from megalith.explain.page import explain_page
from megalith.explain.seq2seq_tokens import SourceAttributions
from megalith.explain.translation import _row_json
from megalith.models.seq2seq import Seq2Seq, Seq2SeqConfig


def _row(kind: str, text: str, read: int) -> dict[str, Any]:
    model = Seq2Seq(
        Seq2SeqConfig(layers=1, heads=2, dim=8, dropout=0.0),
        InputSpec("word", "text", vocab_size=20, shape=(read,)),
        OutputSpec("copied", "text", num_classes=20, shape=(8,)),
    )
    tokenizer = fit_tokenizer(kind, ["abc def", "abcdefgh"], 20)  # type: ignore[arg-type]
    run: Any = SimpleNamespace(model=model, preprocessor=SimpleNamespace(
        inputs=[SimpleNamespace(tokenizer=tokenizer)]))  # fmt: skip
    found = SourceAttributions(
        torch.ones(2, read, dtype=torch.float64), torch.tensor([50, 50]), torch.zeros(2),
        (0.0, 0.0), float("nan"),
    )  # fmt: skip
    explained = {"row": 0, "source_tokens": [], "written": "a", "output_tokens": ["a", "[EOS]"]}
    return _row_json(run, explained, text, found, checked=False)


def test_words_past_max_length_are_counted_and_shown() -> None:
    long = _row("char", "abcdefgh", 5)
    assert long["source_words"] == list("abcde") and long["source_words_cut"] == 3
    assert "source_words_cut" not in _row("char", "abc", 3)
    assert _row("word", "abc def abc def", 2)["source_words_cut"] == 2
    summary = {"run": "r", "output": "copied", "method_name": "ig", "rows": 1, "data": "d",
               "target": "t", "units": "u", "baselines": "b", "trust": {},
               "global_importance": {}}  # fmt: skip
    page = explain_page(Explanations([long], summary), {})
    assert "read the first 5 source words; the 3 after them" in page


def _found(deletion: tuple[float, float]) -> SourceAttributions:
    return SourceAttributions(
        torch.ones(2, 3, dtype=torch.float64), torch.tensor([50, 50]), torch.zeros(2),
        deletion, float("nan"),
    )  # fmt: skip


def test_rows_with_an_empty_source_are_left_out_of_the_deletion_check() -> None:
    from megalith.explain.translation import _summary

    model = Seq2Seq(
        Seq2SeqConfig(layers=1, heads=2, dim=8, dropout=0.0),
        InputSpec("word", "text", vocab_size=20, shape=(3,)),
        OutputSpec("copied", "text", num_classes=20, shape=(8,)),
    )
    run: Any = SimpleNamespace(model=model, path="r")
    empty = (float("nan"), float("nan"))  # an empty source: its deletion check not run
    summary = _summary(run, "d", 2, 1, 50, [_found((0.5, 0.2)), _found(empty)])
    deletion = summary["trust"]["deletion"]
    assert deletion["rows"] == 1 and deletion["passed"]
    assert deletion["rows_better_than_random"] == 1.0
    assert summary["target"].endswith("greedy decoding (beam_size 1)")  # not "(1 beams)"
    assert summary["trust"]["completeness"]["note"].startswith("every written token's")
    assert _summary(run, "d", 1, 4, 50, [_found(empty)])["target"].endswith("(4 beams)")
    nothing = _summary(run, "d", 1, 1, 50, [_found(empty)])["trust"]["deletion"]
    assert nothing["rows"] == 0 and nothing["passed"] and "not measured" in nothing["note"]
