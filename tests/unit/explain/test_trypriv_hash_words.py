"""Explain names a hashed text's values by its words (the hash tokenizer had no `split`, so
`megalith explain` on a `tokenizer: hash` run failed with an AttributeError)."""

from __future__ import annotations

from megalith.data.hashing_tokenizer import HashingTokenizer
from megalith.explain.attention import hashed_labels
from megalith.explain.mapping import text_words


def test_hashed_text_values_are_named_by_its_words_and_word_pairs() -> None:
    tokenizer = HashingTokenizer(64, lowercase=True, ngrams=2)
    text = "Good film GOOD"
    assert len(tokenizer.split(text)) == len(tokenizer.encode([text])[0])
    assert text_words(tokenizer, text, 5) == [
        ("Good", [0]),
        ("film", [1]),
        ("GOOD", [2]),
        ("good film", [3]),
        ("film good", [4]),
    ]
    assert [word for word, _ in text_words(tokenizer, text, 2)] == ["Good", "film"]  # max_length


def test_attention_maps_name_hashed_tokens_by_their_words() -> None:
    tokenizer = HashingTokenizer(64, lowercase=True, ngrams=1)
    text = "Good film"
    ids = [*tokenizer.encode([text])[0], 0, 0]  # padded
    assert hashed_labels(tokenizer, text, ids, [0, 1]) == ["good", "film"]  # not '#37'
    assert hashed_labels(tokenizer, "other words", ids, [0, 1]) == [f"#{ids[0]}", f"#{ids[1]}"]
