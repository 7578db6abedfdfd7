"""Attributions in the attributed space mapped back to what the user gave: one value per input
column, per word of a text, per pixel of an image, per step of a number sequence.

A unit's value (space.py) is the sum of its elements' attributions (over a category's or a
token's embedding dimensions, an image patch's pixels and channels). Occlusion gives every
element of a unit the unit's whole effect, so there a unit's value is one element's, not the sum.
A column's value is the sum of its units.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import torch

from megalith.data.tokenizers import Tokenizer
from megalith.explain.methods import PER_UNIT_METHODS
from megalith.explain.space import InputSpace

_WORD = re.compile(r"\w+|[^\w\s]")  # the word tokenizer's own pattern (data/tokenizers.py)


def unit_values(spaces: list[InputSpace], attributions: list[torch.Tensor], method: str) -> Any:
    """(B, U) float: each unit's value; units that hold no data (padding) are 0."""
    rows = attributions[0].shape[0]
    total = sum(space.valid.shape[1] for space in spaces)
    values = torch.zeros(rows, total, dtype=torch.float64)
    counts = torch.zeros(total, dtype=torch.float64)
    for space, attribution in zip(spaces, attributions, strict=True):
        ids = space.units.expand_as(attribution).reshape(rows, -1)
        flat = attribution.reshape(rows, -1).double()
        values.scatter_add_(1, ids, flat)
        counts.scatter_add_(0, ids[0], torch.ones(ids.shape[1], dtype=torch.float64))
    if method in PER_UNIT_METHODS:
        values /= counts.clamp(min=1)
    return values * valid_units(spaces)


def valid_units(spaces: list[InputSpace]) -> torch.Tensor:
    """(B, U) bool: the units that hold data."""
    return torch.cat([space.valid for space in spaces], dim=1)


def unit_ranges(spaces: list[InputSpace]) -> list[tuple[int, int]]:
    """Each input's units as a [start, end) range of unit ids."""
    ranges, start = [], 0
    for space in spaces:
        end = start + space.valid.shape[1]
        ranges.append((start, end))
        start = end
    return ranges


def column_values(spaces: list[InputSpace], units: torch.Tensor) -> np.ndarray:
    """(B, n_inputs): one value per input column and row, the sum of its units."""
    return np.stack(
        [units[:, start:end].sum(dim=1).numpy() for start, end in unit_ranges(spaces)], axis=1
    )


def pixel_map(attribution: torch.Tensor, method: str) -> np.ndarray:
    """(B, C, H, W) image attributions -> (B, H, W): summed over channels (occlusion: their
    mean, each pixel holding its patch's effect; likewise shap)."""
    reduced = attribution.mean(dim=1) if method in PER_UNIT_METHODS else attribution.sum(dim=1)
    return reduced.double().numpy()


def text_words(tokenizer: Tokenizer, text: str, length: int) -> list[tuple[str, list[int]]]:
    """The words of `text` as the model saw them, each with the token positions (< length) that
    hold its pieces: word tokens are words, BPE / WordPiece pieces are merged back into the
    words they came from (by the tokenizer's offsets), char tokens stay characters."""
    kind = tokenizer.kind
    if kind in ("bpe", "wordpiece", "pretrained"):
        return _merged_pieces(tokenizer, text, length)
    if kind == "char":
        return [(char, [i]) for i, char in enumerate(text[:length])]
    tokens = tokenizer.split(text)[:length]  # type: ignore[attr-defined]  # word tokenizers
    written = _WORD.findall(text)  # the words as written, before lower-casing
    words = [
        written[i] if i < len(written) and written[i].lower() == token else token
        for i, token in enumerate(tokens)
    ]
    return [(word, [i]) for i, word in enumerate(words)]


def _merged_pieces(tokenizer: Tokenizer, text: str, length: int) -> list[tuple[str, list[int]]]:
    hf: Any = tokenizer.tokenizer  # type: ignore[attr-defined]  # Hugging Face tokenizers
    special = bool(getattr(tokenizer, "special_tokens", False))
    encoding = hf.encode(text, add_special_tokens=special)
    words: list[tuple[str, list[int]]] = []
    last_word, start, end = None, 0, 0
    for position, (word, (begin, finish), piece) in enumerate(
        zip(encoding.word_ids, encoding.offsets, encoding.tokens, strict=True)
    ):
        if position >= length:
            break
        if word is not None and word == last_word and words:
            end = finish
            words[-1] = (_word(text[start:end]), [*words[-1][1], position])
            continue
        last_word, start, end = word, begin, finish
        words.append((_word(text[begin:finish]) if word is not None else piece, [position]))
    return words


def _word(written: str) -> str:
    """A word as written, without the space before it; a piece of only whitespace (a byte-level
    tokenizer's newline, say) is named by it escaped (`\\n`, `\\t`, `␣` for a space), not by an
    empty string."""
    word = written.strip()
    if word or not written:
        return word
    return written.encode("unicode_escape").decode("ascii").replace(" ", "␣")


def word_values(
    words: list[tuple[str, list[int]]], token_values: np.ndarray
) -> list[tuple[str, float]]:
    """(word, value) pairs: each word's value is the sum over its token positions."""
    return [(word, float(token_values[positions].sum())) for word, positions in words]
