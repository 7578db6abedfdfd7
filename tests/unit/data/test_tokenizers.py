"""Tokenizers: reserved ids, vocabulary size, decoding, and a state that rebuilds the same one."""

from __future__ import annotations

import json

import pytest

from megalith.data.tokenizers import (
    SPECIAL_TOKENS,
    UNKNOWN,
    fit_tokenizer,
    tokenizer_from_state,
)

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "A lazy afternoon; the dog sleeps, the fox runs!",
    "Foxes and dogs: natural enemies? Not always.",
] * 20
KINDS = ["word", "char", "bpe", "wordpiece"]


@pytest.mark.parametrize("kind", KINDS)
def test_ids_start_after_the_reserved_ones_and_fit_the_size(kind: str) -> None:
    size = 300 if kind == "bpe" else 120  # byte-level BPE holds all 256 bytes
    tokenizer = fit_tokenizer(kind, TEXTS, vocab_size=size)
    ids = [i for row in tokenizer.encode(TEXTS[:3]) for i in row]
    assert ids and min(ids) >= len(SPECIAL_TOKENS)
    assert max(ids) < tokenizer.vocab_size <= size


@pytest.mark.parametrize("kind", KINDS)
def test_state_is_json_and_rebuilds_the_same_tokenizer(kind: str) -> None:
    tokenizer = fit_tokenizer(kind, TEXTS, vocab_size=120)
    state = json.loads(json.dumps(tokenizer.state()))
    rebuilt = tokenizer_from_state(state)
    probe = ["the fox, unseen zebra!", ""]
    assert rebuilt.encode(probe) == tokenizer.encode(probe)
    assert rebuilt.vocab_size == tokenizer.vocab_size


@pytest.mark.parametrize("kind", KINDS)
def test_fitting_twice_gives_the_same_tokenizer(kind: str) -> None:
    first, second = (fit_tokenizer(kind, TEXTS, vocab_size=120) for _ in range(2))
    assert first.state() == second.state()


def test_byte_level_bpe_decodes_any_text_exactly() -> None:
    tokenizer = fit_tokenizer("bpe", TEXTS, vocab_size=300, lowercase=False)
    text = "Zebras ünd 🦊 — never seen\n\tbefore"
    ids = tokenizer.encode([text])[0]
    assert UNKNOWN not in ids
    assert tokenizer.decode(ids) == text


def test_char_tokenizer_decodes_known_characters() -> None:
    tokenizer = fit_tokenizer("char", TEXTS, vocab_size=200, lowercase=False)
    assert tokenizer.decode(tokenizer.encode(["the lazy dog"])[0]) == "the lazy dog"


def test_rare_words_map_to_unknown() -> None:
    tokenizer = fit_tokenizer("word", TEXTS, vocab_size=len(SPECIAL_TOKENS) + 1)
    assert tokenizer.encode(["the zebra"]) == [[len(SPECIAL_TOKENS), UNKNOWN]]


def test_unknown_state_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown tokenizer kind"):
        tokenizer_from_state({"kind": "sentencepiece"})
    with pytest.raises(ValueError, match="invalid bpe tokenizer state"):
        tokenizer_from_state({"kind": "bpe", "tokenizer": {"model": "nonsense"}})
