"""The ids every tokenizer reserves, and how the word tokenizers split a text into tokens.

0 = padding   1 = unknown   2 = begin of text   3 = end of text   4.. = the vocabulary
"""

from __future__ import annotations

import re
from typing import Literal

TokenizerKind = Literal["word", "char", "bpe", "wordpiece", "pretrained", "hash"]

PAD, UNKNOWN, BOS, EOS = 0, 1, 2, 3
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[BOS]", "[EOS]"]
"""Their ids are their positions; ordinary tokens start at len(SPECIAL_TOKENS)."""

WORD = re.compile(r"\w+|[^\w\s]")
"""A word: a run of letters / digits / underscores, or one punctuation mark."""


def word_tokens(text: str, lowercase: bool, ngrams: int = 1) -> list[str]:
    """The words of `text`, then the runs of 2 .. `ngrams` neighbouring words (joined by one
    space): a bag encoder sees the n-grams as extra tokens."""
    text = text.lower() if lowercase else text
    words = WORD.findall(text)
    return words + [
        " ".join(words[i : i + n]) for n in range(2, ngrams + 1) for i in range(len(words) - n + 1)
    ]
