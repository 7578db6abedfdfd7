"""Seq2seq decoding in numpy over a bundle's two graphs: beam search as megalith's own.

    encoder.onnx  source ids (B, S) int64 -> memory (B, S, D) float32, source_mask (B, S) bool
    decoder.onnx  target prefix ids (B, T) int64 (BOS first), memory, source_mask
                  -> next-token logits (B, T, V) float32

`beam_search` follows megalith.models.seq2seq.beam_search step for step (its scores, its ties,
its length normalisation) so that a bundle writes the same text as `Run.predict`; it feeds the
whole prefix at each step (no KV cache), which the torch path's `use_cache=False` also does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from megalith.data.tokenizers import BOS, EOS, PAD

ENCODER_INPUTS = ("source",)
ENCODER_OUTPUTS = ("memory", "source_mask")
DECODER_INPUTS = ("target", "memory", "source_mask")
DECODER_OUTPUTS = ("logits",)

StepLogits = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
"""(prefix ids (B, T), memory (B, S, D), source_mask (B, S)) -> logits (B, V) of the next token."""


@dataclass(frozen=True)
class Decoding:
    """How a seq2seq bundle decodes (bundle.json's `decoding`)."""

    beam_size: int
    """Hypotheses kept per row; 1 is greedy decoding."""
    max_new_tokens: int
    """Most tokens written per row (EOS included)."""

    @classmethod
    def from_description(cls, entry: dict[str, Any]) -> Decoding:
        return cls(beam_size=int(entry["beam_size"]), max_new_tokens=int(entry["max_new_tokens"]))


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """log-probabilities along the last axis, in the logits' dtype."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def beam_search(
    step: StepLogits, memory: np.ndarray, mask: np.ndarray, decoding: Decoding
) -> np.ndarray:
    """Most likely target ids (B, L) per source row, without BOS, ended by EOS, padded with PAD.

    Keeps `beam_size` hypotheses per row, scored by total log-probability (float32, as the
    torch path) and chosen at the end by that total divided by the length without EOS and PAD.
    """
    batch, k = memory.shape[0], decoding.beam_size
    # every row's beams side by side: (B*k, ...)
    memory, mask = np.repeat(memory, k, axis=0), np.repeat(mask, k, axis=0)
    tokens = np.full((batch * k, 1), BOS, dtype=np.int64)
    scores = np.zeros((batch, k), dtype=np.float32)
    scores[:, 1:] = -np.inf  # at first all beams are the same: keep one
    finished = np.zeros(batch * k, dtype=bool)
    offsets = np.arange(batch)[:, None] * k  # (B, 1): each row's first beam
    for _ in range(decoding.max_new_tokens):
        log_probs = log_softmax(step(tokens, memory, mask).astype(np.float32))  # (B*k, V)
        # a finished beam only extends with PAD, at no cost
        log_probs[finished] = -np.inf
        log_probs[finished, PAD] = 0.0
        vocab = log_probs.shape[-1]
        total = (scores.reshape(-1, 1) + log_probs).reshape(batch, k * vocab)
        flat = _top_k(total, k)  # (B, k), best first
        scores = np.take_along_axis(total, flat, axis=1)
        beam = (flat // vocab + offsets).reshape(-1)
        token = (flat % vocab).reshape(-1)
        tokens = np.concatenate([tokens[beam], token[:, None]], axis=1)
        finished = finished[beam] | (token == EOS)
        if finished.all():
            break
    written = tokens[:, 1:]
    lengths = ((written != PAD) & (written != EOS)).sum(axis=1).clip(min=1)
    normalised = scores.reshape(-1) / lengths.astype(np.float32)
    best = normalised.reshape(batch, k).argmax(axis=1) + offsets[:, 0]
    return written[best]


def _top_k(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest values of each row (B, N), largest first (of equal values the
    first; torch.topk leaves their order open, but equal float scores are not expected)."""
    if k == 1:
        return values.argmax(axis=1)[:, None]
    return np.argsort(-values, axis=1, kind="stable")[:, :k]


class Seq2SeqGraphs:
    """A seq2seq bundle's encoder and decoder sessions, writing text ids for source ids."""

    def __init__(self, encoder: Any, decoder: Any, source: str, decoding: Decoding) -> None:
        """`encoder`, `decoder`: ONNX Runtime sessions; `source`: the encoder's input name."""
        self.encoder, self.decoder = encoder, decoder
        self.source, self.decoding = source, decoding

    def encode(self, source: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """source ids (B, S) -> memory (B, S, D) and source_mask (B, S)."""
        memory, mask = self.encoder.run(list(ENCODER_OUTPUTS), {self.source: source})
        return memory, mask

    def logits(self, target: np.ndarray, memory: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Next-token logits (B, T, V) at every position of the target prefixes (B, T)."""
        feed = dict(zip(DECODER_INPUTS, (target, memory, mask), strict=True))
        (logits,) = self.decoder.run(list(DECODER_OUTPUTS), feed)
        return np.asarray(logits)

    def next_logits(self, target: np.ndarray, memory: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Logits (B, V) of the token after each prefix (B, T)."""
        return self.logits(target, memory, mask)[:, -1]

    def write(self, source: np.ndarray, batch_size: int) -> np.ndarray:
        """Written ids (N, L) int64 for source ids (N, S), `batch_size` rows at a time: what
        the run's beam search writes, PAD-padded to the longest row."""
        pieces = []
        for start in range(0, len(source), max(1, batch_size)):
            memory, mask = self.encode(np.ascontiguousarray(source[start : start + batch_size]))
            pieces.append(beam_search(self.next_logits, memory, mask, self.decoding))
        width = max((p.shape[1] for p in pieces), default=0)
        padded = [np.pad(p, ((0, 0), (0, width - p.shape[1])), constant_values=PAD) for p in pieces]
        return np.concatenate(padded) if padded else np.zeros((0, 0), dtype=np.int64)
