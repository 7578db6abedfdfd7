"""Sequence inputs: every cell form, train statistics, truncation, padding, state, errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from megalith.data.features import NumberOutput, SequenceInput
from megalith.data.features.sequence import SequenceInputEncoder, parse_sequence
from megalith.data.preprocess import Preprocessor
from megalith.errors import DataError

WHERE = "data/train.csv"


def fitted(values: list[object], **options: object) -> SequenceInputEncoder:
    encoder = SequenceInputEncoder(SequenceInput.model_validate({"name": "ts", **options}))
    encoder.fit(pd.Series(values, dtype=object), where=WHERE)
    return encoder


def parse(cell: object) -> list[float]:
    return parse_sequence(cell, column="ts", where=WHERE, label=0).tolist()


@pytest.mark.parametrize(
    "cell",
    [
        "1.5 2 -3",
        "1.5,2,-3",
        "1.5, 2, -3",
        "1.5;2;-3",
        "[1.5, 2, -3]",
        " ( 1.5 2\t-3 ) ",
        "1.5e0,2;  -3",
        [1.5, 2, -3],
        (1.5, 2, -3),
        np.array([1.5, 2.0, -3.0]),
        np.array([1.5, 2, -3], dtype=np.float32),
        ["1.5", "2", "-3"],
    ],
)
def test_every_cell_form_gives_the_same_steps(cell: object) -> None:
    assert parse(cell) == [1.5, 2.0, -3.0]


@pytest.mark.parametrize("cell", [None, np.nan, pd.NA, "", "   ", "[]", [], np.array([])])
def test_missing_or_empty_cell_is_an_empty_sequence(cell: object) -> None:
    assert parse(cell) == []


def test_a_single_number_is_a_sequence_of_one() -> None:
    assert parse(4) == [4.0]
    assert parse(2.5) == [2.5]
    assert parse("7") == [7.0]


def test_statistics_come_from_every_train_step() -> None:
    encoder = fitted(["1 2 3", "4", None, [5, 6]])
    steps = np.array([1, 2, 3, 4, 5, 6], dtype=np.float64)
    assert encoder.mean == pytest.approx(steps.mean())
    assert encoder.std == pytest.approx(steps.std())  # population std, as number inputs
    out = encoder.transform(pd.Series(["3.5 6"]), where=WHERE)
    expected = [(3.5 - steps.mean()) / steps.std(), (6 - steps.mean()) / steps.std()]
    torch.testing.assert_close(out[0, :2, 0], torch.tensor(expected, dtype=torch.float32))


def test_constant_values_do_not_divide_by_zero() -> None:
    encoder = fitted(["5 5 5", "5"])
    assert encoder.std == 1.0
    out = encoder.transform(pd.Series(["5 6"]), where=WHERE)
    assert out[0, :2, 0].tolist() == [0.0, 1.0]


def test_normalize_off_keeps_the_raw_values() -> None:
    encoder = fitted(["10 20 30"], normalize=False)
    assert encoder.transform(pd.Series(["10 20"]), where=WHERE)[0, :2, 0].tolist() == [10, 20]


def test_padding_and_mask_channel() -> None:
    encoder = fitted(["1 2 3"], normalize=False, max_length=4)
    out = encoder.transform(pd.Series(["1 2", None, "1 2 3 4"], dtype=object), where=WHERE)
    assert out.dtype == torch.float32 and out.shape == (3, 4, 2)
    assert out[..., 0].tolist() == [[1, 2, 0, 0], [0, 0, 0, 0], [1, 2, 3, 4]]
    assert out[..., 1].tolist() == [[1, 1, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]]
    spec = encoder.spec()
    assert (spec.type, spec.shape, spec.embedding_dim) == ("sequence", (4, 2), 32)


def test_longer_rows_keep_their_last_steps() -> None:
    encoder = fitted(["1 2 3"], normalize=False, max_length=3)
    out = encoder.transform(pd.Series(["1 2 3 4 5 6"]), where=WHERE)
    assert out[0, :, 0].tolist() == [4, 5, 6]
    assert out[0, :, 1].tolist() == [1, 1, 1]


def test_default_max_length_is_the_95th_percentile_at_most_512() -> None:
    lengths = np.arange(1, 21)
    encoder = fitted([" ".join(["1"] * n) for n in lengths])
    assert encoder.max_length == math.ceil(np.percentile(lengths, 95))
    assert fitted([[0.5] * 900, [1.0] * 900]).max_length == 512


def test_state_through_json_gives_identical_tensors() -> None:
    encoder = fitted(["0.1 0.25 7", "3,1", None, [2.5, -1e3]])
    state = json.loads(json.dumps(encoder.state(), allow_nan=False))
    rebuilt = SequenceInputEncoder(encoder.config, state)
    values = pd.Series(["0.3 9 -2 1 1 1", "", [1, 2]], dtype=object)
    assert torch.equal(
        rebuilt.transform(values, where=WHERE), encoder.transform(values, where=WHERE)
    )
    assert rebuilt.spec() == encoder.spec()


def test_preprocessor_fits_and_restores_a_sequence_input() -> None:
    frame = pd.DataFrame({"ts": ["1 2 3", "4 5", "6"], "y": [1.0, 2.0, 3.0]})
    inputs = [SequenceInput(name="ts", max_length=2)]
    outputs = [NumberOutput(name="y")]
    preprocessor = Preprocessor.fit(inputs, outputs, frame, base_dir=None, origin=WHERE)
    restored = Preprocessor.from_json(json.loads(json.dumps(preprocessor.to_json())))
    first = preprocessor.transform(frame, base_dir=None, origin=WHERE).inputs["ts"]
    again = restored.transform(frame, base_dir=None, origin=WHERE).inputs["ts"]
    assert first.shape == (3, 2, 2) and torch.equal(first, again)
    assert first[1, :, 1].tolist() == [1.0, 1.0] and first[2, :, 1].tolist() == [1.0, 0.0]


def test_encoder_keeps_lstm_unless_a_kind_is_named() -> None:
    assert SequenceInput(name="ts").encoder.kind == "lstm"
    partial = SequenceInput.model_validate({"name": "ts", "encoder": {"hidden": 16}})
    assert (partial.encoder.kind, partial.encoder.hidden) == ("lstm", 16)
    assert SequenceInput.model_validate({"name": "ts", "encoder": "cnn"}).encoder.kind == "cnn"


@pytest.mark.parametrize(
    ("cell", "words"),
    [
        ("1 2 x 4", ["'x' is not a number", "'1 2 x 4'", "separated by spaces, commas"]),
        ("1, two, 3", ["'two' is not a number", "or leave the cell empty"]),
        ("1 nan 3", ["step 2 is nan", "not a finite number", "replace it with a finite"]),
        ("1 2 inf", ["step 3 is inf", "replace it with a finite number"]),
        ([1.0, float("nan")], ["step 2 is nan", "replace it with a finite number"]),
        ([1.0, None], ["step 2 is None", "replace it with a finite number"]),
        (["1", "b"], ["'b' is not a number"]),
        ([[1, 2], [3]], ["[1, 2] is not a number"]),
        ({"a": 1}, ["{'a': 1} is not a number"]),
    ],
)
def test_bad_step_names_column_row_and_value(cell: object, words: list[str]) -> None:
    encoder = fitted(["1 2 3"])
    values = pd.Series(["1 2", "3", cell], dtype=object)
    with pytest.raises(DataError) as caught:
        encoder.transform(values, where=WHERE)
    message = str(caught.value)
    assert message.startswith("data/train.csv: column 'ts', row 3: ")
    for word in words:
        assert word in message, (word, message)


def test_bad_step_at_fit_names_the_row_label() -> None:
    encoder = SequenceInputEncoder(SequenceInput(name="ts"))
    values = pd.Series(["1 2", "1 oops"], index=[10, 41])
    with pytest.raises(DataError, match=r"column 'ts', row 42: 'oops' is not a number"):
        encoder.fit(values, where=WHERE)


def test_long_cells_are_shortened_in_the_message() -> None:
    cell = " ".join(["1"] * 200) + " x"
    with pytest.raises(DataError) as caught:
        parse(cell)
    assert len(str(caught.value)) < 300


def test_train_column_without_numbers_is_an_error() -> None:
    with pytest.raises(DataError, match="sequence column 'ts' has no numbers in the train split"):
        fitted([None, "", "[]"])
