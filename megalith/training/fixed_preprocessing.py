"""The preprocessing of a private run: fitted on the train rows, on a public table, or given.

DP-SGD covers the model's weights, not what the preprocessing fits on the same rows
(docs/privacy.md). `train.privacy.preprocessing: fixed` fits nothing on them: each column's state
comes from `train.privacy.public_data` (fitted on that table) or is written in the config under
`train.privacy.fixed.COLUMN`, in the form `preprocessor.json` keeps it (e.g. a number's
`{mean, std, min, max}`, a binary's `{values: [negative, positive], mode: 0.0}` (mode: the
fill for a missing value), a category's `{vocabulary: [...]}`, a category target's
`{classes: [...]}`). A text input with `tokenizer: hash`, a `max_length` and no `idf` needs
no entry: hashing fits no vocabulary (data/hashing_tokenizer.py); idf weights are document
frequencies, so they must be given (`idf: [...]`, one per id) or come from public data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from megalith.data.features.category import CategoryOutputEncoder
from megalith.data.preprocess import FORMAT, VERSION, Preprocessor
from megalith.data.sources import Table
from megalith.errors import ConfigError, DataError
from megalith.training.private_run import public_table

if TYPE_CHECKING:
    from megalith.config import Config

EXAMPLES = {
    "number": "{mean: 0.0, std: 1.0, min: -3.0, max: 3.0}",
    "binary": "{values: [no, yes], mode: 0.0}",
    "category": "{vocabulary: [a, b, c]}",
    "text": "{tokenizer: {kind: word, lowercase: true, vocabulary: [...]}, max_length: 64}",
}
"""What a `train.privacy.fixed` entry looks like, per input type; preprocessor.json of any run
shows the full form."""
OUTPUT_EXAMPLES = {
    "category": "{classes: [...]}",
    "binary": "{values: [no, yes], mode: 0.0}",
    "number": "{mean: 0.0, std: 1.0}",
}
"""The same per output type."""


def new_run_preprocessor(
    cfg: Config, train: pd.DataFrame, table: Table, base_dir: Path
) -> Preprocessor:
    """The preprocessor of a new run: fitted on `train.privacy.public_data` when given, built
    from the given states with `preprocessing: fixed`, fitted on the `train` rows otherwise.

    Raises:
        ConfigError: `fixed` without public data, and a column has no (valid) given state.
        DataError: the public table cannot be read, or a column is absent from the table.
    """
    privacy = cfg.train.privacy
    public = public_table(privacy, base_dir)
    fit_on, rows = (public, public.frame) if public is not None else (table, train)
    if public is None and privacy is not None and privacy.preprocessing == "fixed":
        return fixed_preprocessor(cfg.inputs, cfg.outputs, privacy.fixed)
    return Preprocessor.fit(
        cfg.inputs, cfg.outputs, rows, base_dir=fit_on.base_dir, origin=fit_on.origin
    )


def fixed_preprocessor(
    inputs: Sequence[Any], outputs: Sequence[Any], given: dict[str, dict[str, Any]]
) -> Preprocessor:
    """A preprocessor whose every state is given (nothing fitted on any row).

    Raises:
        ConfigError: a feature has no entry in `given` (naming the column and the key to add),
            an entry is invalid, or `given` names a column that is not a feature.
    """
    names = {feature.name for feature in [*inputs, *outputs]}
    unknown = sorted(set(given) - names)
    if unknown:
        raise ConfigError(
            f"train.privacy.fixed: {', '.join(map(repr, unknown))} is not an input or output; "
            f"the features are: {', '.join(sorted(names))}"
        )
    built = [_built(feature, given, "input").inputs[0] for feature in inputs]
    targets = [_built(feature, given, "output").outputs[0] for feature in outputs]
    for target in targets:
        if isinstance(target, CategoryOutputEncoder):  # a label they lack names the key
            target.classes_from = f"train.privacy.fixed.{target.config.name}.classes"
    return Preprocessor(built, targets)


def _built(feature: Any, given: dict[str, dict[str, Any]], role: str) -> Preprocessor:
    """A preprocessor of the one feature, from its given state; a ConfigError naming it."""
    entry = _entry(feature, given, role)
    entries = {"format": FORMAT, "version": VERSION, "inputs": [], "outputs": []}
    entries[f"{role}s"] = [entry]
    try:
        return Preprocessor.from_json(entries)
    except DataError as error:
        example = _example(feature, role)
        raise ConfigError(
            f"train.privacy.fixed.{feature.name}: {error} A {feature.type} {role} takes "
            f"{example} (preprocessor.json of a run shows the form)."
        ) from None


def _check_state(feature: Any, state: Any, role: str) -> None:
    """What from_json lets through but would make a useless or broken run: an empty category
    list, or one that is a text or repeats a value, a statistic that is not a finite number, a
    number target's spread of 0 or less.

    Raises:
        ConfigError: naming train.privacy.fixed.COLUMN.KEY and the form it takes.
    """
    key = f"train.privacy.fixed.{feature.name}"
    form = f"A {feature.type} {role} takes {_example(feature, role)}."
    if not isinstance(state, dict):
        raise ConfigError(f"{key}: expected a mapping, got {state!r}. {form}")
    if feature.type == "category":
        name = "classes" if role == "output" else "vocabulary"
        values = state.get(name)
        if name in state and not isinstance(values, list):
            raise ConfigError(
                f"{key}.{name} must be a list of values, got {values!r} (a text would be read "
                f"as its characters). {form}"
            )
        if isinstance(values, list) and not values:
            raise ConfigError(
                f"{key}.{name} is empty: every value would be unknown; list the values. {form}"
            )
        listed: list[Any] = values if isinstance(values, list) else []
        repeated = sorted({str(v) for v in listed if listed.count(v) > 1})
        if repeated:
            raise ConfigError(
                f"{key}.{name} lists {', '.join(map(repr, repeated))} more than once; list "
                "each value once"
            )
    if feature.type == "text" and role == "input" and "idf" in state:
        idf, size = state["idf"], feature.vocab_size
        fine = isinstance(idf, list) and all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in idf
        )
        if not fine or (_hashed(feature, role) and len(idf) != size):
            raise ConfigError(
                f"{key}.idf must be a list of {size} finite weights (one per id, the "
                f"input's vocab_size), got {_described(idf)}"
            )
    if feature.type == "number":
        for stat in ("mean", "std", "min", "max"):
            value = state.get(stat)
            if stat in state and not (
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and math.isfinite(value)
            ):
                raise ConfigError(
                    f"{key}.{stat} must be a finite number, got {value!r} "
                    f"(a NaN or infinite statistic reaches the model as NaN). {form}"
                )
        if role == "output" and isinstance(state.get("std"), int | float) and state["std"] <= 0:
            raise ConfigError(
                f"{key}.std must be above 0 (the target is divided by it), got {state['std']!r}."
            )


def _example(feature: Any, role: str) -> str:
    if role == "output":
        return OUTPUT_EXAMPLES.get(feature.type, "{...}")
    return EXAMPLES.get(feature.type, "{...}")


def _entry(feature: Any, given: dict[str, dict[str, Any]], role: str) -> dict[str, Any]:
    config = {"config": feature.model_dump(mode="json")}
    if feature.name in given:
        state = given[feature.name]
        _check_state(feature, state, role)
        if role == "output" and feature.type == "category" and "counts" not in state:
            state = {**state, "counts": [0] * len(state.get("classes", []))}  # not known
        if _hashed(feature, role) and "tokenizer" not in state:  # hashing fits nothing
            state = {"tokenizer": _hash_state(feature), "max_length": feature.max_length, **state}
        return {**config, "state": state}
    if _hashed(feature, role) and feature.max_length is not None and not feature.idf:
        state = {"tokenizer": _hash_state(feature), "max_length": feature.max_length}
        return {**config, "state": state}
    example = _example(feature, role)
    hint = " (or tokenizer: hash with a max_length, idf: false)" if feature.type == "text" else ""
    if _hashed(feature, role) and feature.idf:
        example = f"{{idf: [...]}} ({feature.vocab_size} weights, one per id)"
        hint = " and a max_length on the input" if feature.max_length is None else ""
    raise ConfigError(
        f"train.privacy.preprocessing fixed: {role} '{feature.name}' ({feature.type}) has no "
        f"given preprocessing; add train.privacy.fixed.{feature.name}: {example}{hint}, "
        "or give train.privacy.public_data"
    )


def _hashed(feature: Any, role: str) -> bool:
    return role == "input" and feature.type == "text" and feature.tokenizer == "hash"


def _hash_state(feature: Any) -> dict[str, Any]:
    """A hashed text's tokenizer state: its settings only, nothing fitted."""
    return {
        "kind": "hash",
        "vocab_size": feature.vocab_size,
        "lowercase": feature.lowercase,
        "ngrams": feature.ngrams,
    }


def _described(value: Any) -> str:
    return f"a list of {len(value)}" if isinstance(value, list) else repr(value)[:60]
