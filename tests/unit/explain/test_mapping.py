"""Attributions mapped back to words: word tokens keep their written case, sub-word pieces merge."""

from __future__ import annotations

import numpy as np

from megalith.data.tokenizers import fit_tokenizer
from megalith.explain.mapping import text_words, word_values

TEXTS = ["the quick brown fox jumps over the lazy dog"] * 20 + ["foxes jumping quickly"] * 5


def test_word_tokens_are_the_words_as_written() -> None:
    tokenizer = fit_tokenizer("word", TEXTS, vocab_size=50)
    words = text_words(tokenizer, "The Quick zebra!", length=10)
    assert words == [("The", [0]), ("Quick", [1]), ("zebra", [2]), ("!", [3])]
    assert text_words(tokenizer, "The Quick zebra!", length=2) == words[:2]


def test_wordpiece_pieces_merge_into_their_word_and_sum() -> None:
    tokenizer = fit_tokenizer("wordpiece", TEXTS, vocab_size=40)
    text = "quickly jumping foxes"
    words = text_words(tokenizer, text, length=32)
    assert [w for w, _ in words] == ["quickly", "jumping", "foxes"]
    pieces = [p for _, positions in words for p in positions]
    assert pieces == list(range(len(pieces)))  # every piece belongs to one word, in order
    assert len(pieces) == len(tokenizer.encode([text])[0])
    values = np.arange(len(pieces), dtype=float)
    pairs = word_values(words, values)
    assert sum(v for _, v in pairs) == values.sum()


def test_bpe_words_come_back_without_their_leading_space() -> None:
    tokenizer = fit_tokenizer("bpe", TEXTS * 3, vocab_size=300)
    words = text_words(tokenizer, "lazy foxes jump", length=32)
    assert [w for w, _ in words] == ["lazy", "foxes", "jump"]
