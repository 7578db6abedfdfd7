"""Checks of a table's columns against the configured features, and what to tell the user:
repeated names in the config, missing columns (with a close match and the columns there are)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import pandas as pd

from megalith.configbase import ConfigModel
from megalith.data.csvfile import unsplit_header_hint
from megalith.errors import ConfigError, DataError, did_you_mean

if TYPE_CHECKING:
    from megalith.data.features import InputFeature, OutputFeature


def check_unique_names(features: Sequence[InputFeature | OutputFeature], group: str) -> None:
    names = [feature.name for feature in features]
    repeated = sorted(name for name, n in Counter(names).items() if n > 1)
    if repeated:
        raise ConfigError(f"{group}: column(s) {', '.join(map(repr, repeated))} listed twice.")


FIX_CONFIG = "Fix the name in the config's inputs / outputs."
MAY_BE_EMPTY = ("number", "category", "binary", "text", "set")
"""Input types whose missing cells predict (the preprocessing's fill for a missing value)."""


def check_columns(frame: pd.DataFrame, names: Sequence[str], origin: str, advice: str) -> None:
    """Every configured column must exist; name the missing ones, a close match, and the rest,
    then `advice`: what to do."""
    available = [str(column) for column in frame.columns]
    absent = [name for name in dict.fromkeys(names) if name not in frame.columns]
    if not absent:
        return
    hints = "".join(f" '{name}'{did_you_mean(name, available)}" for name in absent)
    listed = ", ".join(available[:30]) + (", ..." if len(available) > 30 else "")
    noun = "column" if len(absent) == 1 else "columns"
    unsplit = unsplit_header_hint(available)
    if unsplit:
        raise DataError(f"{origin}: {noun}{hints} not found.{unsplit}")
    raise DataError(
        f"{origin}: {noun}{hints} not found; the columns are: {listed or '(none)'}. {advice}"
    )


def column_advice(
    trained_model: str | None,
    inputs: Sequence[ConfigModel],
    columns: Sequence[str],
    present: Iterable[object] = (),
) -> str:
    """What to do about missing input `columns`: fix the config while training; once a model is
    trained (`trained_model` names it), give the data every column it reads, and say that
    columns of types whose missing cells predict may be given empty."""
    if trained_model is None:
        return FIX_CONFIG
    named = ", ".join(map(repr, columns))
    model = trained_model[:1].upper() + trained_model[1:]  # a sentence's start
    advice = f"{model} reads the column(s) {named}: give the data every one."
    have = set(present)
    absent = [c for c in inputs if str(getattr(c, "name", "")) not in have]
    if absent and all(getattr(c, "type", None) in MAY_BE_EMPTY for c in absent):
        advice += " A column you do not have may be given empty: its cells read as missing."
    return advice
