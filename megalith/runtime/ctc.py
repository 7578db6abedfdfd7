"""CTC decoding in numpy: greedy (best path) and prefix beam search with optional LM fusion.

Both read one utterance's frame log-probabilities `log_probs` (T, V) float32 (a log-softmax over
the CTC output vocabulary, blank included) and return label ids without blanks.

- `greedy_ctc` takes the most likely label of every frame, merges runs of the same label and
  drops blanks (Graves et al. 2006, "Connectionist temporal classification", best-path decoding).
- `prefix_beam_search` keeps the `beam_size` most likely label prefixes, each scored by the total
  probability of all alignments that collapse to it, held apart as "ends in blank" and "ends in a
  label" so that a repeated label is only counted as new after a blank (Graves 2012, "Supervised
  sequence labelling", §7.5; Hannun et al. 2014, "First-pass large vocabulary continuous speech
  recognition using bidirectional recurrent DNNs", algorithm 1). With a `language_model` it does
  shallow fusion: a prefix ranks by log P_ctc(prefix | x) + lm_weight * log P_lm(prefix)
  + token_bonus * len(prefix), the bonus offsetting the LM's pull towards short outputs.

This module never imports torch (megalith.runtime is torch-free).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

LanguageModel = Callable[[tuple[int, ...]], np.ndarray]
"""log P(next label | prefix) (V,) over the CTC vocabulary for a prefix of label ids; the entry
at the blank id is ignored. One that also has `prefetch(prefixes)` is told, every frame, which
prefixes the search will ask about, to score them in one batch (megalith.transcribe.
shallow_fusion.GPTLanguageModel, a Megalith GPT run, does)."""

NEG_INF = float("-inf")


@dataclass(frozen=True)
class Hypothesis:
    """One decoded label sequence."""

    labels: tuple[int, ...]
    """Label ids, blanks removed and repeats merged."""
    acoustic: float
    """log P_ctc(labels | x): the log of the summed probability of every alignment (nats)."""
    score: float
    """What the search ranked by: `acoustic` + lm_weight * LM log-probability + token_bonus *
    len(labels); equal to `acoustic` without a language model and bonus."""


def _check(log_probs: np.ndarray, blank: int) -> None:
    if log_probs.ndim != 2:
        raise ValueError(f"log_probs must be (frames, vocabulary), got shape {log_probs.shape}")
    if not 0 <= blank < log_probs.shape[1]:
        raise ValueError(f"blank id {blank} is outside the vocabulary of {log_probs.shape[1]}")


def greedy_ctc(log_probs: np.ndarray, blank: int) -> list[int]:
    """Best-path CTC decoding: argmax per frame, merge repeats, drop blanks.

    Args:
        log_probs: (T, V) frame log-probabilities (or logits: only the argmax is used).
        blank: the blank label's id.
    Returns:
        The label ids, e.g. frames `a a - a b b` (- blank) give `a a b`.
    Raises:
        ValueError: `log_probs` is not 2-D or `blank` is not one of its columns.
    """
    _check(log_probs, blank)
    if len(log_probs) == 0:
        return []
    best = log_probs.argmax(axis=1)
    keep = np.ones(len(best), dtype=bool)
    keep[1:] = best[1:] != best[:-1]  # the first frame of each run
    return [int(label) for label in best[keep] if label != blank]


def _logaddexp(a: float, b: float) -> float:
    """log(exp(a) + exp(b)) of two Python floats (numpy's ufunc costs ~10x more per scalar)."""
    if a < b:
        a, b = b, a
    if b == NEG_INF:
        return a
    return a + math.log1p(math.exp(b - a))


class _Prefix:
    """A beam entry: log-probability of the prefix's alignments ending in blank / in a label."""

    __slots__ = ("blank", "label")

    def __init__(self) -> None:
        self.blank = NEG_INF
        self.label = NEG_INF

    def total(self) -> float:
        return _logaddexp(self.blank, self.label)


def _candidates(frame: np.ndarray, blank: int, top_k: int | None) -> Sequence[int]:
    """The labels worth extending with at this frame (all but the blank, or the top_k)."""
    if top_k is None or top_k >= len(frame):
        order = np.arange(len(frame))
    else:
        order = np.argpartition(frame, -top_k)[-top_k:]
    return [int(label) for label in order if label != blank]


class _LanguageModelScores:
    """Accumulated lm_weight * log P_lm(prefix), asked of the language model once per prefix."""

    def __init__(self, language_model: LanguageModel | None, weight: float) -> None:
        self.language_model, self.weight = language_model, weight
        self.prefix_scores: dict[tuple[int, ...], float] = {(): 0.0}
        self.next_scores: dict[tuple[int, ...], np.ndarray] = {}

    def of(self, prefix: tuple[int, ...]) -> float:
        if self.language_model is None:
            return 0.0
        if prefix not in self.prefix_scores:
            head = prefix[:-1]
            if head not in self.next_scores:
                self.next_scores[head] = np.asarray(self.language_model(head), dtype=np.float64)
            self.prefix_scores[prefix] = self.of(head) + self.weight * float(
                self.next_scores[head][prefix[-1]]
            )
        return self.prefix_scores[prefix]


def _extend(
    beams: dict[tuple[int, ...], _Prefix],
    frame: np.ndarray,
    blank: int,
    top_k: int | None,
) -> dict[tuple[int, ...], _Prefix]:
    """Every prefix the current beams can become after one more frame (one step of algorithm 1)."""
    grown: dict[tuple[int, ...], _Prefix] = {}
    labels = _candidates(frame, blank, top_k)
    values: list[float] = frame.tolist()  # Python floats: cheaper per element than numpy
    for prefix, entry in beams.items():
        total = entry.total()
        same = grown.setdefault(prefix, _Prefix())
        same.blank = _logaddexp(same.blank, total + values[blank])
        last = prefix[-1] if prefix else None
        if last is not None and last not in labels:
            labels_here: Sequence[int] = [*labels, last]  # the repeat keeps this prefix alive
        else:
            labels_here = labels
        for label in labels_here:
            p = values[label]
            longer = grown.setdefault((*prefix, label), _Prefix())
            if label == last:
                # `a a` merges into `a`; only `a - a` is a new `a`
                same.label = _logaddexp(same.label, entry.label + p)
                longer.label = _logaddexp(longer.label, entry.blank + p)
            else:
                longer.label = _logaddexp(longer.label, total + p)
    return grown


def prefix_beam_search(
    log_probs: np.ndarray,
    blank: int,
    beam_size: int = 8,
    *,
    top_k: int | None = None,
    language_model: LanguageModel | None = None,
    lm_weight: float = 0.0,
    token_bonus: float = 0.0,
) -> list[Hypothesis]:
    """CTC prefix beam search, optionally fused with a language model (shallow fusion).

    Args:
        log_probs: (T, V) frame log-probabilities, each row a log-softmax over labels + blank.
        blank: the blank label's id.
        beam_size: prefixes kept after every frame; with beam_size at least the number of
            distinct prefixes the search is exact (the most probable labelling).
        top_k: extend prefixes only with each frame's `top_k` most likely labels (faster; None
            tries every label).
        language_model: log P(next label | prefix) over the same V labels; None for none.
        lm_weight: the language model's weight λ in the fused score.
        token_bonus: added per emitted label (a length reward, often 0.5-2 with an LM).
    Returns:
        Up to `beam_size` hypotheses, best `score` first (one empty hypothesis for T = 0).
    Raises:
        ValueError: bad shape, blank id or beam_size.
    """
    _check(log_probs, blank)
    if beam_size < 1:
        raise ValueError(f"beam_size must be >= 1, got {beam_size}")
    lm = _LanguageModelScores(language_model if lm_weight != 0 else None, lm_weight)
    start = _Prefix()
    start.blank = 0.0
    beams: dict[tuple[int, ...], _Prefix] = {(): start}
    frames = np.asarray(log_probs, dtype=np.float64)

    def rank(item: tuple[tuple[int, ...], _Prefix]) -> float:
        prefix, entry = item
        return entry.total() + lm.of(prefix) + token_bonus * len(prefix)

    prefetch = getattr(lm.language_model, "prefetch", None)
    for frame in frames:
        if prefetch is not None:  # this frame asks for the next-label scores of every beam
            prefetch(list(beams))
        grown = _extend(beams, frame, blank, top_k)
        beams = dict(heapq.nlargest(beam_size, grown.items(), key=rank))
    ranked = sorted(beams.items(), key=rank, reverse=True)
    return [Hypothesis(prefix, entry.total(), rank((prefix, entry))) for prefix, entry in ranked]
