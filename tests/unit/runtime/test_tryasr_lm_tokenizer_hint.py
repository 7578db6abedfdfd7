"""Shallow fusion's refusal of a GPT that spells text otherwise gives a fix that works: a char
GPT for a char recognizer, but for a word or bpe recognizer (which no char GPT can score) both
trained with `tokenizer: char`, not "train the GPT with tokenizer char" alone."""

from __future__ import annotations

import pytest

from megalith.data.tokenizers import tokenizer_from_state
from megalith.errors import ConfigError
from megalith.transcribe.shallow_fusion import label_map

CHAR = tokenizer_from_state({"kind": "char", "lowercase": True, "vocabulary": list(" eno")})
CHAR_LM = tokenizer_from_state({"kind": "char", "lowercase": True, "vocabulary": list(" enot")})
WORD = tokenizer_from_state({"kind": "word", "lowercase": True, "vocabulary": ["one", "two"]})


def test_a_word_recognizer_with_a_char_gpt_is_told_to_train_both_char() -> None:
    with pytest.raises(ConfigError) as caught:
        label_map(WORD, CHAR_LM, "model.lm")
    message = str(caught.value)
    assert "recognizer's is word" in message and "train both with `tokenizer: char`" in message


def test_a_char_recognizer_with_a_word_gpt_is_told_to_train_the_gpt_char() -> None:
    with pytest.raises(ConfigError, match=r"train the GPT run with .*tokenizer: char"):
        label_map(CHAR, WORD, "model.lm")


def test_two_char_tokenizers_map_by_character() -> None:
    ids = label_map(CHAR, CHAR_LM, "model.lm")
    assert len(ids) == CHAR.vocab_size
