"""train.privacy.fixed: states that would make a broken run are refused, naming the key."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from megalith.data.features.binary import BinaryOutput
from megalith.data.features.category import CategoryInput, CategoryOutput
from megalith.data.features.number import NumberInput, NumberOutput
from megalith.data.features.text import TextInput
from megalith.errors import ConfigError, DataError
from megalith.training.fixed_preprocessing import fixed_preprocessor
from megalith.training.privacy import PrivacyConfig

NUMBER = {"mean": 40.0, "std": 12.0, "min": 18.0, "max": 90.0}


def _build(inputs: list[Any], outputs: list[Any], given: dict[str, Any]) -> None:
    fixed_preprocessor(inputs, outputs, given)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"city": {"vocabulary": []}}, "train.privacy.fixed.city.vocabulary is empty"),
        ({"age": {**NUMBER, "mean": float("nan")}}, "fixed.age.mean must be a finite"),
        ({"age": {**NUMBER, "min": None}}, "fixed.age.min must be a finite"),
        ({"age": {**NUMBER, "max": float("inf")}}, "fixed.age.max must be a finite"),
        ({"label": {"classes": []}}, "train.privacy.fixed.label.classes is empty"),
        ({"city": {"vocabulary": "Paris"}}, "fixed.city.vocabulary must be a list of values"),
        ({"label": {"classes": "neg"}}, "fixed.label.classes must be a list of values"),
        ({"city": {"vocabulary": ["Rome", "Rome"]}}, "fixed.city.vocabulary lists 'Rome' more"),
    ],
)
def test_broken_fixed_states_are_refused_by_key(given: dict[str, Any], message: str) -> None:
    full = {
        "age": NUMBER,
        "city": {"vocabulary": ["Paris", "Rome"]},
        "label": {"classes": ["neg", "pos"]},
        **given,
    }
    inputs = [NumberInput(name="age"), CategoryInput(name="city")]
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        _build(inputs, [CategoryOutput(name="label")], full)


def test_a_number_target_needs_a_positive_std_and_its_own_example() -> None:
    with pytest.raises(ConfigError, match=r"fixed\.price\.std must be above 0"):
        _build([], [NumberOutput(name="price")], {"price": {"mean": 1.0, "std": 0.0}})
    with pytest.raises(ConfigError, match=r"\{mean: 0\.0, std: 1\.0\}"):  # not {classes: [...]}
        _build([], [NumberOutput(name="price")], {})
    with pytest.raises(ConfigError, match=r"\{values: \[no, yes\], mode: 0\.0\}"):
        _build([], [BinaryOutput(name="churned")], {})
    _build([], [NumberOutput(name="price")], {"price": {"mean": 1.0, "std": 2.0}})


def test_fixed_and_public_data_together_are_refused() -> None:
    with pytest.raises(ValueError, match="not both"):
        PrivacyConfig(preprocessing="fixed", fixed={"age": NUMBER}, public_data="public.csv")
    PrivacyConfig(preprocessing="fixed", public_data="public.csv")  # either alone is fine


def test_a_label_the_given_classes_lack_names_the_fixed_key() -> None:
    built = fixed_preprocessor(
        [NumberInput(name="age")],
        [CategoryOutput(name="label")],
        {"age": NUMBER, "label": {"classes": ["no", "yes"]}},
    )
    with pytest.raises(DataError) as caught:
        built.outputs[0].encode(pd.Series(["no", "neg"]), where="t.csv (train split)")
    message = str(caught.value)
    assert "has label 'neg', which train.privacy.fixed.label.classes lacks" in message
    assert "Add the label to train.privacy.fixed.label.classes" in message
    assert "the train split lacks" not in message


def test_a_hashed_text_with_idf_takes_only_its_weights_of_the_right_length() -> None:
    text = TextInput(name="t", tokenizer="hash", vocab_size=64, max_length=12, idf=True)
    with pytest.raises(ConfigError, match=r"fixed\.t: \{idf: \[\.\.\.\]\} \(64 weights"):
        fixed_preprocessor([text], [], {})  # the form it needs, not a word vocabulary's
    with pytest.raises(ConfigError, match=r"fixed\.t\.idf must be a list of 64 finite weights"):
        fixed_preprocessor([text], [], {"t": {"idf": [1.0] * 3}})
    built = fixed_preprocessor([text], [], {"t": {"idf": [1.0] * 64}})  # tokenizer filled in
    state = built.to_json()["inputs"][0]["state"]
    assert state["tokenizer"]["kind"] == "hash" and state["max_length"] == 12
