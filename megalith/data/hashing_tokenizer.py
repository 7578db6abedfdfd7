"""The hashing trick: word (and word n-gram) tokens mapped to a fixed number of buckets.

Feature hashing (Weinberger et al. 2009, "Feature hashing for large scale multitask learning";
scikit-learn's `HashingVectorizer`) gives every token the bucket |MurmurHash3| modulo the number
of buckets (the signed 32-bit hash, seed 0, as scikit-learn's `murmurhash3_32` computes it, in
megalith.data.murmur so the torch-free runtime needs no scikit-learn: the buckets of
`HashingVectorizer(n_features=buckets, alternate_sign=False)`). Nothing is fitted: there
is no vocabulary, so the tokenizer's state says nothing about the train rows (what private
training needs: docs/privacy.md), a word never seen in train still lands in a bucket, and the
embedding table is as small as the buckets asked for. Distinct tokens may share a bucket; with
a few thousand buckets a bag model loses little to that (the benchmark in docs/privacy.md).

Ids follow data/tokenizers.py: 0 padding, 1 unknown (never produced), 2 / 3 begin / end, and
the buckets from 4: `vocab_size` = buckets + 4.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from megalith.data.murmur import murmurhash3_32
from megalith.data.token_ids import EOS, SPECIAL_TOKENS, TokenizerKind, word_tokens


class HashingTokenizer:
    """Words (lower-cased by default) and runs of up to `ngrams` words, hashed into buckets."""

    kind: TokenizerKind = "hash"
    end_id = EOS

    def __init__(self, vocab_size: int, lowercase: bool = True, ngrams: int = 1) -> None:
        if vocab_size <= len(SPECIAL_TOKENS):
            raise ValueError(f"the hash tokenizer needs vocab_size > {len(SPECIAL_TOKENS)}")
        self._vocab_size = vocab_size
        self.lowercase = lowercase
        self.ngrams = ngrams

    @property
    def vocab_size(self) -> int:
        return self._vocab_size

    def bucket(self, token: str) -> int:
        """The id of `token`: 4 + |murmurhash3_32(token)| mod (vocab_size - 4)."""
        buckets = self._vocab_size - len(SPECIAL_TOKENS)
        return len(SPECIAL_TOKENS) + abs(murmurhash3_32(token, seed=0)) % buckets

    def split(self, text: str) -> list[str]:
        """The tokens of `text` before hashing, one per id `encode` gives: its words, then its
        word n-grams (explain names each token's value by them)."""
        return word_tokens(text, self.lowercase, self.ngrams)

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        cache: dict[str, int] = {}
        encoded = []
        for text in texts:
            ids = []
            for token in self.split(text):
                found = cache.get(token)
                if found is None:
                    found = cache[token] = self.bucket(token)
                ids.append(found)
            encoded.append(ids)
        return encoded

    def decode(self, ids: Iterable[int]) -> str:
        """Hashing cannot be inverted: the bucket ids, as `#id` words."""
        first = len(SPECIAL_TOKENS)
        return " ".join(f"#{i}" for i in ids if first <= i < self._vocab_size)

    def state(self) -> dict[str, Any]:
        return {
            "kind": "hash",
            "vocab_size": self._vocab_size,
            "lowercase": self.lowercase,
            "ngrams": self.ngrams,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> HashingTokenizer:
        return cls(int(state["vocab_size"]), bool(state["lowercase"]), int(state["ngrams"]))
