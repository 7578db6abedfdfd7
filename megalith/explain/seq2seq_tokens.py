"""Token attributions of a seq2seq model: which source tokens made it write each output token.

For one row, the output y_1 .. y_T (ended by EOS) is fixed first (the run's own decoding); then
for each written token t, log p(y_t | y_<t, x), teacher-forced on that output, is attributed to
the source tokens by Integrated Gradients (Sundararajan, Taly & Yan 2017) at the encoder's token
embeddings: Captum's IntegratedGradients over the embedding output, which is what its
LayerIntegratedGradients computes on the `source_embedding` layer (tested equal), with the
completeness check and step raising of every other run (methods.py). The baseline is the zero
(padding) embedding at every real source token, the positions kept, as for text inputs and GPT
runs. A token's value is its embedding's attributions summed: (T, S) values per row.

The written tokens are attributed together: the row is repeated once per written token and
Captum's target picks that token's log-probability, so the step raising is per written token.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from megalith.data.specs import InputSpec
from megalith.explain.methods import attribute
from megalith.explain.sanity import flattened, rank_correlations, valid_elements
from megalith.explain.space import InputSpace
from megalith.explain.timing import PartTimes
from megalith.explain.trust import deletion_curves
from megalith.models.seq2seq import Seq2Seq


class WrittenLogProbs(nn.Module):
    """A seq2seq model as a function of its source token embeddings (N, S, D) and source ids
    (N, S): the log-probabilities (N, T) of the fixed written tokens `targets` (T,), each read
    after `decoder_input` (T,) (BOS, then the written tokens: teacher forcing). `total` sums
    them into the sequence's log-likelihood (N,)."""

    def __init__(
        self, model: Seq2Seq, decoder_input: torch.Tensor, targets: torch.Tensor, *, total: bool
    ) -> None:
        super().__init__()
        self.model = model
        self.decoder_input = decoder_input
        self.targets = targets
        self.total = total

    def forward(self, embeddings: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        rows = embeddings.shape[0]
        memory, mask = self.model.encode_embeddings(embeddings, source)  # (N, S, D)
        logits, _ = self.model.decode(self.decoder_input.expand(rows, -1), memory, mask)
        log_probs = logits.float().log_softmax(dim=-1)  # (N, T, V)
        index = self.targets.view(1, -1, 1).expand(rows, -1, 1)
        written = log_probs.gather(2, index).squeeze(2)  # (N, T)
        return written.sum(dim=1) if self.total else written


@dataclass
class SourceAttributions:
    """One row's attributions: `values` (T, S) float64, written token t's log-probability
    attributed to each source token; per written token the steps Integrated Gradients took
    and its completeness gap; the deletion check's areas on the sequence log-likelihood; the
    model-randomisation rank correlation (NaN when not measured); the most (written token,
    step) pairs of one forward pass (summary.json's internal_batch_size; 0: not recorded)."""

    values: torch.Tensor
    steps: torch.Tensor
    gaps: torch.Tensor
    deletion: tuple[float, float]
    randomisation: float
    internal_batch_size: int = 0


def source_attributions(
    model: Seq2Seq,
    source: torch.Tensor,
    written: list[int],
    end: int,
    *,
    steps: int = 50,
    internal_batch_size: int | None = None,
    randomised: Seq2Seq | None = None,
    deletion: bool = True,
    times: PartTimes | None = None,
) -> SourceAttributions:
    """Attribute each written token of one row to its source tokens.

    Args:
        source: the row's source ids (1, S), padding already cut off.
        written: the ids the model wrote, without BOS and EOS; `end` (the EOS id) is appended,
            so T = len(written) + 1.
        internal_batch_size: the most (token, step) pairs per forward pass (default: about
            4,096 source tokens' worth).
        randomised: the same architecture re-initialised (sanity.py); given, the rank
            correlation of the two explanations is measured.
        deletion: run the deletion check (else its areas are NaN).
        times: given, the seconds of ig, deletion and randomisation are added to it.
    """
    from megalith.data.tokenizers import BOS

    targets = torch.tensor([*written, end])  # (T,)
    decoder_input = torch.tensor([[BOS, *written]])  # (1, T)
    count, length = len(targets), source.shape[1]
    with torch.no_grad():
        embeddings = model.source_embedding(source)  # (1, S, D)
    values = embeddings.expand(count, -1, -1)  # (T, S, D): one copy per written token
    space = InputSpace(
        InputSpec(model.source_name, "text"),
        values,
        torch.zeros_like(values),
        source.expand(count, -1),
        torch.arange(length).view(1, length, 1),
        torch.ones(count, length, dtype=torch.bool),
    )
    # Captum takes every written token in each pass: fewer pairs than tokens is not possible
    size = max(count, internal_batch_size or max(1, 4096 // length))
    forward = WrittenLogProbs(model, decoder_input, targets, total=False).eval()
    chosen = torch.arange(count)  # written token t explains column t
    times = times or PartTimes()
    with times.part("ig"):
        found = attribute("ig", forward, [space], chosen, steps=steps, internal_batch_size=size)
    assert found.steps is not None and found.gap is not None
    per_token = found.values[0].sum(dim=-1).double()  # (T, S)
    areas = (float("nan"), float("nan"))
    if deletion:
        with times.part("deletion"):
            areas = _deletion(model, space, decoder_input, targets, per_token, size)
    with times.part("randomisation"):
        correlation = _randomisation(
            randomised, space, decoder_input, targets, found.values[0], steps, size
        )
    return SourceAttributions(per_token, found.steps, found.gap, areas, correlation, size)


def _deletion(
    model: Seq2Seq,
    space: InputSpace,
    decoder_input: torch.Tensor,
    targets: torch.Tensor,
    per_token: torch.Tensor,
    size: int,
) -> tuple[float, float]:
    """The deletion check (trust.py) on the sequence log-likelihood: source tokens' embeddings
    put to 0, in the order of their attribution to the whole output (the sum over written
    tokens, which Integrated Gradients of the log-likelihood would give), against random
    orders."""
    one = InputSpace(
        space.spec,
        space.values[:1],
        space.baseline[:1],
        None if space.extra is None else space.extra[:1],
        space.units,
        space.valid[:1],
    )
    sequence = WrittenLogProbs(model, decoder_input, targets, total=True).eval()
    scores = per_token.sum(dim=0, keepdim=True)  # (1, S)
    attributed, random = deletion_curves(
        sequence, [one], None, scores, one.valid, internal_batch_size=size
    )
    return float(attributed[0]), float(random[0])


def _randomisation(
    randomised: Seq2Seq | None,
    space: InputSpace,
    decoder_input: torch.Tensor,
    targets: torch.Tensor,
    trained: torch.Tensor,
    steps: int,
    size: int,
) -> float:
    """Spearman correlation of the row's |attributions| (every written token's, every source
    embedding number) from the trained and the re-initialised model (sanity.py)."""
    if randomised is None:
        return float("nan")
    forward = WrittenLogProbs(randomised, decoder_input, targets, total=False).eval()
    chosen = torch.arange(len(targets))
    again = attribute(
        "ig", forward, [space], chosen, steps=steps, internal_batch_size=size, raise_steps=False
    )
    valid = valid_elements([space], "ig").reshape(1, -1)
    both = flattened([trained]).reshape(1, -1), flattened(again.values).reshape(1, -1)
    return float(rank_correlations(*both, valid)[0])
