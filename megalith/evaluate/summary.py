"""The report's data section: rows per split, each column and what its preprocessing fitted,
and the class balance of each classification target per split."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from megalith.data.preprocess import Preprocessor
from megalith.evaluate.html import format_number

_LISTED = 8
"""Values (categories, classes) named before '…'."""


@dataclass(frozen=True)
class ColumnSummary:
    """One configured column: its role, type, missing cells in train, what was fitted."""

    name: str
    role: str
    type: str
    missing: int
    fitted: str


@dataclass(frozen=True)
class ClassBalance:
    """Rows per class of one target in each split: rows[i] = [class, count, share, count, ...]."""

    output: str
    splits: list[str]
    rows: list[list[str]]


def split_sizes(splits: Mapping[str, pd.DataFrame]) -> list[tuple[str, int, str]]:
    """(split, rows, share of all rows) for train, val and test."""
    total = sum(len(frame) for frame in splits.values()) or 1
    return [(name, len(frame), f"{len(frame) / total:.0%}") for name, frame in splits.items()]


def describe_columns(preprocessor: Preprocessor, train: pd.DataFrame) -> list[ColumnSummary]:
    """Every input and output column with a one-line account of its fitted preprocessing."""
    rows = []
    encoders: list[tuple[str, Any]] = [("input", e) for e in preprocessor.inputs]
    encoders += [("output", e) for e in preprocessor.outputs]
    for role, encoder in encoders:
        config: Any = encoder.config
        missing = int(train[config.name].isna().sum()) if config.name in train.columns else 0
        fitted = describe_fitted(config.type, role, config, encoder.state())
        rows.append(ColumnSummary(config.name, role, config.type, missing, fitted))
    return rows


def describe_fitted(kind: str, role: str, config: Any, state: Mapping[str, Any]) -> str:
    """What one encoder learned from the train split, in words."""
    if kind == "number" and role == "input":
        return (
            f"normalize: {config.normalize}; mean {format_number(state['mean'])}, "
            f"std {format_number(state['std'])}, range {format_number(state['min'])} to "
            f"{format_number(state['max'])}; missing: {config.missing}"
        )
    if kind == "number":
        return f"standardised for training: mean {format_number(state['mean'])}, " + (
            f"std {format_number(state['std'])}"
        )
    if kind == "binary":
        negative, positive = state["values"]
        extra = f"; {describe_threshold(config.threshold, state)}" if role == "output" else ""
        return f"values {negative!s} / {positive!s} (positive: {positive!s}){extra}"
    if kind == "category" and role == "input":
        vocabulary = state["vocabulary"]
        return f"{len(vocabulary)} categories + unknown: {_listed(vocabulary)}"
    if kind == "category":
        return f"{len(state['classes'])} classes: {_listed(state['classes'])}"
    if kind == "text":
        from megalith.data.tokenizers import tokenizer_from_state

        tokenizer = tokenizer_from_state(state["tokenizer"])
        length = f", max length {state['max_length']} tokens" if role == "input" else ""
        source = state["tokenizer"].get("source")
        kind = f"pretrained tokenizer of {source}" if source else f"{tokenizer.kind} tokenizer"
        return f"{kind}, {tokenizer.vocab_size:,} token ids{length}"
    if kind == "sequence":
        encoder = getattr(config.encoder, "kind", config.encoder)
        scaling = (
            f"normalised with mean {format_number(state['mean'])}, std "
            f"{format_number(state['std'])}"
            if config.normalize
            else "not normalised"
        )
        return f"last {state['max_length']} steps kept; {scaling}; {encoder} encoder"
    if kind == "image":
        height, width = state["size"]
        mean = ", ".join(f"{m:.3f}" for m in state["mean"])
        std = ", ".join(f"{s:.3f}" for s in state["std"])
        shape = f"{height} x {width} px, {state['channels']} channel(s)"
        return f"{shape}; pixel mean {mean}, std {std}"
    if kind == "audio":
        mel = state["log_mel"]
        seconds = state["samples"] / mel["sample_rate"]
        augment = "augmented at training" if config.augment else "no augmentation"
        return (
            f"{mel['sample_rate']} Hz mono, {seconds:.2f} s; log-mel: {mel['n_mels']} "
            f"{mel['mel_scale']} bins, {mel['n_fft']}-sample frames every {mel['hop_length']}, "
            f"normalised per bin; {augment}"
        )
    return ", ".join(f"{key} {value}" for key, value in state.items())


def class_balance(
    preprocessor: Preprocessor, splits: Mapping[str, pd.DataFrame]
) -> list[ClassBalance]:
    """For each category or binary output, the rows of each class in each non-empty split."""
    tables = []
    present = [name for name, frame in splits.items() if len(frame)]
    for encoder in preprocessor.outputs:
        config: Any = encoder.config
        if config.type not in ("category", "binary"):
            continue
        state = encoder.state()
        classes: Sequence[Any] = state["classes"] if config.type == "category" else state["values"]
        counts = {name: _counts(splits[name][config.name], classes) for name in present}
        rows = []
        for i, label in enumerate(classes):
            row = [str(label)]
            for name in present:
                total = sum(counts[name]) or 1
                row += [f"{counts[name][i]:,}", f"{counts[name][i] / total:.1%}"]
            rows.append(row)
        tables.append(ClassBalance(config.name, present, rows))
    return tables


def _counts(values: pd.Series, classes: Sequence[Any]) -> list[int]:
    """Rows per class; labels are compared as text so that 3 and '3' from a CSV agree."""
    counted = values.dropna().astype(str).value_counts()
    return [int(counted.get(str(label), 0)) for label in classes]


def _listed(values: Sequence[Any]) -> str:
    shown = ", ".join(str(v) for v in values[:_LISTED])
    return shown + (", …" if len(values) > _LISTED else "")


def describe_threshold(configured: float | str, state: Mapping[str, Any]) -> str:
    """'threshold 0.5' or 'threshold 0.31 (auto: best F1 on the val split)'."""
    if configured != "auto":
        return f"threshold {configured}: predicted positive when its probability is above it"
    chosen = state.get("threshold")
    if chosen is None:
        return "threshold auto, not chosen yet (0.5 until training ends)"
    return f"threshold {format_number(chosen)} (auto: best F1 on the val split)"
