"""Seq2seq token attributions equal Captum's LayerIntegratedGradients at the source embedding,
sum to each written token's change in log-probability, and the forward is the model's own."""

from __future__ import annotations

import torch

from megalith.data.specs import InputSpec, OutputSpec
from megalith.data.tokenizers import BOS, EOS, PAD
from megalith.explain.seq2seq_tokens import WrittenLogProbs, source_attributions
from megalith.models.seq2seq import Seq2Seq, Seq2SeqConfig


def _model() -> Seq2Seq:
    torch.manual_seed(0)
    return Seq2Seq(
        Seq2SeqConfig(layers=1, heads=2, dim=8, dropout=0.0),
        InputSpec("word", "text", vocab_size=20, shape=(6,)),
        OutputSpec("copied", "text", num_classes=20, shape=(8,)),
    ).eval()


def test_written_log_probs_are_the_models_teacher_forced_log_probabilities() -> None:
    model, source, written = _model(), torch.tensor([[5, 6, 7]]), [9, 11]
    forward = WrittenLogProbs(
        model, torch.tensor([[BOS, *written]]), torch.tensor([*written, EOS]), total=False
    )
    with torch.no_grad():
        found = forward(model.source_embedding(source), source)  # (1, 3)
        logits = model({"word": source, "copied": torch.tensor([[BOS, *written]])})["copied"]
    expected = logits.log_softmax(-1)[0, torch.arange(3), torch.tensor([*written, EOS])]
    torch.testing.assert_close(found[0], expected)


def test_source_attributions_equal_layer_integrated_gradients_and_are_complete() -> None:
    from captum.attr import LayerIntegratedGradients

    model, source, written = _model(), torch.tensor([[5, 6, 7, 8]]), [9, 11, 4]
    found = source_attributions(model, source, written, EOS, steps=50)
    assert found.values.shape == (4, 4)  # (written tokens + EOS, source tokens)
    assert bool((found.gaps <= 0.05).all())
    forward = WrittenLogProbs(
        model, torch.tensor([[BOS, *written]]), torch.tensor([*written, EOS]), total=False
    )

    def from_ids(ids: torch.Tensor, mask_ids: torch.Tensor) -> torch.Tensor:
        return forward(model.source_embedding(ids), mask_ids)

    layer = LayerIntegratedGradients(from_ids, model.source_embedding)
    for t in range(4):  # the PAD id's embedding is the zero baseline; the mask stays the row's
        reference = layer.attribute(
            source,
            baselines=torch.full_like(source, PAD),
            target=t,
            additional_forward_args=(source,),
            n_steps=int(found.steps[t]),
        )
        torch.testing.assert_close(
            found.values[t], reference[0].sum(-1).double(), atol=1e-5, rtol=1e-4
        )
    with torch.no_grad():  # completeness: each token's values sum to its log-probability change
        change = forward(model.source_embedding(source), source) - forward(
            torch.zeros(1, 4, 8), source
        )
    torch.testing.assert_close(found.values.sum(dim=1), change[0].double(), atol=0.05, rtol=0.05)
    area_attributed, area_random = found.deletion
    assert area_attributed == area_attributed and area_random == area_random  # measured
