"""The encoded inputs of a TensorTable as one matrix per row, for the linear baselines.

Numbers, binaries and number sequences enter as the preprocessed values (already normalised);
a category as the one-hot of its encoded index; a text as TF-IDF of its token ids (scikit-learn's
TfidfTransformer, fitted on the train rows); an image as its normalised pixels, average-pooled
when it has more than `MAX_IMAGE_FEATURES` values; an audio clip as the mean and standard
deviation over time of each normalised log-mel bin. Category and text blocks stay sparse.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypeAlias

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from sklearn.feature_extraction.text import TfidfTransformer

from megalith.data.features.logmel import log_mel
from megalith.data.specs import InputSpec
from megalith.data.tensors import TensorTable

MAX_IMAGE_FEATURES = 4096
"""An image with more values (C * H * W) is average-pooled until it has at most this many."""

Matrix: TypeAlias = np.ndarray | sp.csr_matrix
"""(rows, features): dense float64, or sparse CSR when a category or text input is present."""


def pooled_size(shape: tuple[int, ...]) -> tuple[int, int]:
    """(height, width) an image of `shape` (C, H, W) is pooled to: its own, or the largest size
    with one whole pooling factor that keeps C * h * w <= MAX_IMAGE_FEATURES."""
    channels, height, width = shape
    factor = max(1, math.ceil(math.sqrt(channels * height * width / MAX_IMAGE_FEATURES)))
    while channels * (height // factor) * (width // factor) > MAX_IMAGE_FEATURES:
        factor += 1
    return max(1, height // factor), max(1, width // factor)


class LinearFeatures:
    """Fitted on train rows (`fit`), then `transform` turns any rows of any split into a matrix."""

    def __init__(self, specs: Sequence[InputSpec]) -> None:
        self.specs = list(specs)
        self.tfidf: dict[str, TfidfTransformer] = {}
        """text input name -> its TF-IDF weighting (the IDF fitted on the train rows)."""

    def fit(self, table: TensorTable, rows: np.ndarray) -> LinearFeatures:
        """Learn the IDF of each text input on `rows` (positions in `table`) of the train split."""
        for spec in self.specs:
            if spec.type == "text":
                counts = _token_counts(_column(table, spec.name, rows), spec.vocab_size)
                self.tfidf[spec.name] = TfidfTransformer().fit(counts)
        return self

    @property
    def width(self) -> int:
        """Columns of the matrix."""
        return sum(_width(spec) for spec in self.specs)

    @property
    def dense_width(self) -> int:
        """Columns held densely (memory grows with rows times this)."""
        return sum(_width(spec) for spec in self.specs if spec.type not in ("category", "text"))

    def transform(self, table: TensorTable, rows: np.ndarray) -> Matrix:
        """(len(rows), width): the inputs of `rows` (positions in `table`) side by side."""
        blocks = [self._block(spec, _column(table, spec.name, rows)) for spec in self.specs]
        if any(sp.issparse(block) for block in blocks):
            return sp.hstack(blocks, format="csr", dtype=np.float64)
        if not blocks:
            return np.zeros((len(rows), 0))
        return np.hstack(blocks)

    def _block(self, spec: InputSpec, values: torch.Tensor) -> Matrix:
        n = values.shape[0]
        if spec.type in ("number", "binary"):
            return values.double().numpy().reshape(n, 1)
        if spec.type == "category":
            ones = np.ones(n)
            index = values.long().numpy()
            return sp.csr_matrix((ones, (np.arange(n), index)), shape=(n, spec.vocab_size))
        if spec.type == "text":
            return sp.csr_matrix(
                self.tfidf[spec.name].transform(_token_counts(values, spec.vocab_size))
            )
        if spec.type == "image":
            return _pixels(spec, values)
        if spec.type == "sequence":
            return values[..., 0].double().numpy().reshape(n, -1)
        if spec.type == "audio":
            return _log_mel_summary(spec, values)
        raise ValueError(f"input '{spec.name}': no linear features for type {spec.type}")


def _column(table: TensorTable, name: str, rows: np.ndarray) -> torch.Tensor:
    return table.inputs[name].cpu()[torch.from_numpy(rows)]


def _width(spec: InputSpec) -> int:
    if spec.type in ("category", "text"):
        return spec.vocab_size
    if spec.type == "image":
        height, width = pooled_size(spec.shape)
        return spec.shape[0] * height * width
    if spec.type == "sequence":
        return spec.shape[0]
    if spec.type == "audio":
        return 2 * spec.log_mel.n_mels
    return 1


def _log_mel_summary(spec: InputSpec, waves: torch.Tensor) -> np.ndarray:
    """(n, 2 * n_mels): each mel bin's normalised log energy, averaged over the frames, then its
    standard deviation over them (the clip's average spectrum and how much it moves)."""
    mels = log_mel(waves.numpy(), spec.log_mel)  # (n, M, T)
    mean = np.asarray(spec.mean or 0.0).reshape(1, -1, 1)
    std = np.asarray(spec.std or 1.0).reshape(1, -1, 1)
    normalised = (mels - mean) / std
    return np.concatenate([normalised.mean(axis=2), normalised.std(axis=2)], axis=1)


def _token_counts(ids: torch.Tensor, vocab_size: int) -> sp.csr_matrix:
    """(rows, vocab_size) term counts of right-padded token ids (B, L); padding (0) left out."""
    tokens = ids.long().numpy()
    row, position = np.nonzero(tokens)
    counts = sp.csr_matrix(
        (np.ones(len(row)), (row, tokens[row, position])), shape=(tokens.shape[0], vocab_size)
    )
    counts.sum_duplicates()
    return counts


def _pixels(spec: InputSpec, images: torch.Tensor) -> np.ndarray:
    """uint8 (B, C, H, W) -> (B, C*h*w): normalised as the model normalises, pooled if large."""
    x = images.float() / 255  # (B, C, H, W)
    mean = torch.tensor(spec.mean or (0.0,) * x.shape[1]).view(1, -1, 1, 1)
    std = torch.tensor(spec.std or (1.0,) * x.shape[1]).view(1, -1, 1, 1)
    x = (x - mean) / std
    size = pooled_size(tuple(x.shape[1:]))
    if size != tuple(x.shape[2:]):
        x = F.adaptive_avg_pool2d(x, size)
    return x.flatten(1).double().numpy()
