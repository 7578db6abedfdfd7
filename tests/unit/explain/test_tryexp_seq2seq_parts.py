"""Seq2seq token attributions: the seconds of each part are counted (summary.json's
seconds_by_part), and an --internal-batch-size below the written tokens is raised to them
rather than left to Captum's warning."""

from __future__ import annotations

import warnings

import torch

from megalith.data.specs import InputSpec, OutputSpec
from megalith.data.tokenizers import EOS
from megalith.explain.sanity import randomised_copy
from megalith.explain.seq2seq_tokens import source_attributions
from megalith.explain.timing import PartTimes
from megalith.models.seq2seq import Seq2Seq, Seq2SeqConfig


def test_parts_are_timed_and_a_small_internal_batch_warns_nothing() -> None:
    torch.manual_seed(0)
    model = Seq2Seq(
        Seq2SeqConfig(layers=1, heads=2, dim=8, dropout=0.0),
        InputSpec("word", "text", vocab_size=20, shape=(6,)),
        OutputSpec("copied", "text", num_classes=20, shape=(8,)),
    ).eval()
    randomised = randomised_copy(model)
    assert isinstance(randomised, Seq2Seq)
    times = PartTimes()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Captum's "cannot be less than the number of inputs"
        found = source_attributions(
            model, torch.tensor([[5, 6, 7]]), [9, 11], EOS, steps=8,
            internal_batch_size=1, randomised=randomised, times=times,
        )  # fmt: skip
    assert found.values.shape == (3, 3)
    assert set(times.as_json()) == {"ig", "deletion", "randomisation"}
    assert all(seconds >= 0 for seconds in times.as_json().values())


def test_a_gpt_documents_parts_are_timed() -> None:
    from megalith.explain.causal_lm import next_token_model
    from megalith.explain.language import _next_token_attributions
    from megalith.models.gpt import GPT, GPTConfig

    torch.manual_seed(0)
    config = GPTConfig(context=16, layers=1, heads=2, dim=8, dropout=0.0)
    model = GPT(config, OutputSpec("text", "text", num_classes=20)).eval()
    times = PartTimes()
    forward = next_token_model(model)
    found = _next_token_attributions(forward, "text", [4, 5, 6], 7, 8, randomised=[], times=times)
    assert len(found["values"]) == 3
    assert set(times.as_json()) == {"ig", "deletion", "randomisation"}
