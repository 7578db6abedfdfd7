"""A byte-level tokenizer's whitespace pieces (a prompt file's final newline) are words of their
own; they were named "" in word_attributions and explain.html, so the value of the word that
often took the largest one could not be read. They are now named escaped: `\\n`, `␣\\t`."""

from __future__ import annotations

from megalith.data.tokenizers import fit_tokenizer
from megalith.explain.mapping import text_words

TEXTS = ["the quick brown fox jumps over the lazy dog\n"] * 60


def test_whitespace_pieces_are_named_not_empty() -> None:
    tokenizer = fit_tokenizer("bpe", TEXTS, vocab_size=300)
    words = text_words(tokenizer, "lazy fox\n", 32)
    assert [w for w, _ in words] == ["lazy", "fox", "\\n"]
    spaced = [w for w, _ in text_words(tokenizer, "lazy fox \t", 32)]
    assert spaced[:2] == ["lazy", "fox"] and all(spaced)
    assert spaced[-1].endswith("\\t")
    positions = [p for _, found in text_words(tokenizer, "lazy fox\n", 32) for p in found]
    assert positions == list(range(len(tokenizer.encode(["lazy fox\n"])[0])))
