"""Text features: a word vocabulary fitted on train, token ids padded to a fixed length."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field

from megalith.configbase import ConfigModel
from megalith.data.specs import InputSpec
from megalith.errors import DataError


class TextInput(ConfigModel):
    """A free-text input column, split into lower-cased word tokens."""

    name: str
    """Column name in the table."""
    type: Literal["text"] = "text"
    max_vocab: int = Field(20_000, gt=0)
    """Keep at most this many of the most frequent tokens; the rest map to 'unknown'."""
    max_length: int | None = Field(None, gt=0)
    """Tokens kept per row; by default the 95th percentile of train lengths, at most 256."""
    lowercase: bool = True
    """Lower-case text before splitting it into tokens."""
    embedding_dim: int = Field(64, gt=0)
    """Size of the token embeddings."""


_TOKEN = re.compile(r"\w+|[^\w\s]")
PAD, UNKNOWN = 0, 1
"""Reserved token ids; the vocabulary starts at 2."""
_LONGEST_DEFAULT = 256


class TextInputEncoder:
    """Splits text into word and punctuation tokens: int64 (B, L) ids, right-padded with 0."""

    def __init__(self, config: TextInput, state: dict[str, Any] | None = None) -> None:
        self.config = config
        self.vocabulary: list[str] = []
        """Known tokens; vocabulary[i] has id i + 2."""
        self.max_length = 0
        if state is not None:
            self.vocabulary = list(state["vocabulary"])
            self.max_length = int(state["max_length"])

    def tokenize(self, text: Any) -> list[str]:
        """Split one cell into tokens; a missing cell is an empty text."""
        if text is None or (not isinstance(text, str) and pd.isna(text)):
            return []
        text = str(text)
        return _TOKEN.findall(text.lower() if self.config.lowercase else text)

    def fit(self, values: pd.Series, *, where: str, base_dir: Path | None = None) -> None:
        """Keep the max_vocab most frequent tokens (ties by token); choose max_length."""
        token_lists = [self.tokenize(text) for text in values.tolist()]
        counts = Counter(token for tokens in token_lists for token in tokens)
        if not counts:
            raise DataError(
                f"{where}: text column '{self.config.name}' has no words in the train split; "
                "check the column, or remove it from the inputs."
            )
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        self.vocabulary = [token for token, _ in ranked[: self.config.max_vocab]]
        lengths = np.array([len(tokens) for tokens in token_lists])
        percentile = int(np.ceil(np.percentile(lengths, 95)))
        self.max_length = self.config.max_length or min(max(percentile, 1), _LONGEST_DEFAULT)

    def transform(
        self, values: pd.Series, *, where: str, base_dir: Path | None = None
    ) -> torch.Tensor:
        """Return int64 (B, max_length): token ids, 1 for unknown tokens, 0 after the text ends."""
        if not self.max_length:
            raise RuntimeError(f"text input '{self.config.name}' used before fit")
        id_of = {token: i + 2 for i, token in enumerate(self.vocabulary)}
        ids = np.full((len(values), self.max_length), PAD, dtype=np.int64)
        for row, text in enumerate(values.tolist()):
            tokens = self.tokenize(text)[: self.max_length]
            ids[row, : len(tokens)] = [id_of.get(token, UNKNOWN) for token in tokens]
        return torch.from_numpy(ids)

    def state(self) -> dict[str, Any]:
        return {"vocabulary": self.vocabulary, "max_length": self.max_length}

    def spec(self) -> InputSpec:
        return InputSpec(
            name=self.config.name,
            type="text",
            vocab_size=len(self.vocabulary) + 2,
            shape=(self.max_length,),
            embedding_dim=self.config.embedding_dim,
        )
