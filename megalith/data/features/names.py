"""Set features: a cell holds several names ('numpy pandas', 'a|b|c'), read as a bag of categories.

Each name is a category of its own, looked up in a train vocabulary; names seen fewer than
`min_count` times on train share the 'other' id (1, the 'unknown' id of text). The tensor is the
text contract's (int64 (B, L), 0 = padding, 1 = other, 4.. = names, each name once per row), so the
model reads it as a bag: the mean of its names' embeddings, optionally weighted by inverse
document frequency (TF-IDF without the term counts, since a name appears once per row).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from megalith.configbase import ConfigModel
from megalith.data.arrays import to_tensor
from megalith.data.features.encoding import SequenceEncoderConfig
from megalith.data.features.text import pad_ids, text_cells
from megalith.data.specs import InputSpec
from megalith.data.tokenizers import SPECIAL_TOKENS

if TYPE_CHECKING:
    import torch

_ANY_SEPARATOR = re.compile(r"[|,;\s]+")
_OTHER = 1
_FIRST_NAME_ID = len(SPECIAL_TOKENS)
_LONGEST_DEFAULT = 64


class SetInput(ConfigModel):
    """A column of several names per cell (tags, requirements, a '|'-separated list)."""

    name: str
    """Column name in the table."""
    type: Literal["set"] = "set"
    separator: str | None = None
    """What separates names in a cell; by default any run of spaces, '|', ',' or ';'."""
    min_count: int = Field(2, gt=0)
    """Names seen on fewer train rows than this go to the shared 'other' id."""
    max_names: int = Field(20_000, gt=0)
    """Keep at most this many of the most frequent names."""
    max_length: int | None = Field(None, gt=0)
    """Names kept per row; by default the most a train row holds, at most 64."""
    lowercase: bool = False
    """Lower-case names before looking them up."""
    embedding_dim: int | None = Field(None, gt=0)
    """Embedding size; by default min(64, 1.6 * names ** 0.56) rounded, at least 8."""
    idf: bool = True
    """Weight each name by its inverse document frequency on train, as TF-IDF does."""


class NameSplitter:
    """The tokenizer-like view of a set column that the explain stage uses: `split` a cell into
    its names, `decode` an id back to its name."""

    kind = "word"

    def __init__(self, config: SetInput, vocabulary: list[str]) -> None:
        self.config = config
        self.vocabulary = vocabulary

    def split(self, cell: str | Sequence[Any]) -> list[str]:
        """A cell's names: a text split at the separator, or a list (JSON, Parquet) as it is."""
        if not isinstance(cell, str):
            parts = [str(name) for name in cell if name is not None]
        elif self.config.separator:
            parts = cell.split(self.config.separator)
        else:
            parts = _ANY_SEPARATOR.split(cell)
        names = [p.strip() for p in parts if p.strip()]
        names = [n.lower() for n in names] if self.config.lowercase else names
        return list(dict.fromkeys(names))  # each name once, in first-seen order

    def decode(self, ids: list[int]) -> str:
        return " ".join(
            self.vocabulary[i - _FIRST_NAME_ID]
            for i in ids
            if _FIRST_NAME_ID <= i < _FIRST_NAME_ID + len(self.vocabulary)
        )


class SetInputEncoder:
    """Names looked up in a train vocabulary: int64 (B, L), padded with 0, 'other' = 1."""

    def __init__(self, config: SetInput, state: dict[str, Any] | None = None) -> None:
        self.config = config
        self.vocabulary: list[str] = []
        self.document_counts: list[int] = []
        self.rows = 0
        self.length = 1
        self.fitted = state is not None
        if state is not None:
            self.vocabulary = [str(v) for v in state["vocabulary"]]
            self.document_counts = [int(c) for c in state["document_counts"]]
            self.rows, self.length = int(state["rows"]), int(state["length"])
        self.tokenizer = NameSplitter(config, self.vocabulary)

    def fit(self, values: pd.Series, *, where: str, base_dir: Path | None = None) -> None:
        """Count on how many train rows each name appears; keep the frequent ones."""
        rows = [self.tokenizer.split(cell) for cell in _set_cells(values)]
        counts: dict[str, int] = {}
        for names in rows:
            for name in names:
                counts[name] = counts.get(name, 0) + 1
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        kept = [(n, c) for n, c in ranked if c >= self.config.min_count][: self.config.max_names]
        self.vocabulary = [n for n, _ in kept]
        self.document_counts = [c for _, c in kept]
        self.rows = len(rows)
        longest = max((len(names) for names in rows), default=1)
        self.length = self.config.max_length or max(1, min(longest, _LONGEST_DEFAULT))
        self.tokenizer = NameSplitter(self.config, self.vocabulary)
        self.fitted = True

    def transform(
        self, values: pd.Series, *, where: str, base_dir: Path | None = None
    ) -> torch.Tensor:
        """`encode` as a tensor."""
        return to_tensor(self.encode(values, where=where, base_dir=base_dir))

    def encode(self, values: pd.Series, *, where: str, base_dir: Path | None = None) -> np.ndarray:
        """Return int64 (B, L): each row's names (the first L), a name train kept as 4.., any
        other as 1; a missing or empty cell is all padding (0)."""
        if not self.fitted:
            raise RuntimeError(f"set input '{self.config.name}' used before fit")
        index_of = {name: i + _FIRST_NAME_ID for i, name in enumerate(self.vocabulary)}
        ids = [
            [index_of.get(name, _OTHER) for name in self.tokenizer.split(cell)]
            for cell in _set_cells(values)
        ]
        return pad_ids(ids, self.length)

    def state(self) -> dict[str, Any]:
        return {
            "vocabulary": self.vocabulary,
            "document_counts": self.document_counts,
            "rows": self.rows,
            "length": self.length,
        }

    @property
    def vocab_size(self) -> int:
        return _FIRST_NAME_ID + len(self.vocabulary)

    def _idf(self) -> tuple[float, ...]:
        """Smoothed idf per id, as scikit-learn's: log((1 + n) / (1 + df)) + 1; 'other' gets
        the weight of a name seen once, the reserved ids 0."""
        rare = math.log((1 + self.rows) / 2) + 1
        weights = [0.0, rare, 0.0, 0.0]
        weights += [math.log((1 + self.rows) / (1 + c)) + 1 for c in self.document_counts]
        return tuple(weights)

    def spec(self) -> InputSpec:
        names = max(1, len(self.vocabulary))
        default_dim = min(64, max(8, round(1.6 * names**0.56)))
        return InputSpec(
            name=self.config.name,
            type="text",  # the text tensor contract; the model reads it as a bag
            vocab_size=self.vocab_size,
            shape=(self.length,),
            embedding_dim=self.config.embedding_dim or default_dim,
            token_weights=self._idf() if self.config.idf else (),
            encoder=SequenceEncoderConfig(kind="bag"),
        )


def _set_cells(values: pd.Series) -> list[str | Sequence[Any]]:
    """Cells as texts or lists of names (a JSON or Parquet list cell, a served JSON list); a
    missing cell is an empty text."""
    return [
        list(cell) if isinstance(cell, list | tuple | np.ndarray) else text_cells([cell])[0]
        for cell in values.tolist()
    ]
