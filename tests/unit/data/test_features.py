"""Encoders for number, binary, category and text features: values, state round trips, errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from megalith.data.features.binary import (
    BinaryInput,
    BinaryInputEncoder,
    BinaryOutput,
    BinaryOutputEncoder,
)
from megalith.data.features.category import (
    CategoryInput,
    CategoryInputEncoder,
    CategoryOutput,
    CategoryOutputEncoder,
)
from megalith.data.features.number import (
    NumberInput,
    NumberInputEncoder,
    NumberOutput,
    NumberOutputEncoder,
)
from megalith.data.features.text import TextInput, TextInputEncoder
from megalith.errors import DataError

WHERE = "data/train.csv"


def roundtrip(encoder_type, encoder):
    """Rebuild an encoder from its config and its state after a trip through JSON text."""
    state = json.loads(json.dumps(encoder.state(), allow_nan=False))
    return encoder_type(encoder.config, state)


# ---------------------------------------------------------------- number


def test_number_standardises_with_train_mean_and_population_std():
    encoder = NumberInputEncoder(NumberInput(name="age"))
    encoder.fit(pd.Series([1.0, 2.0, 3.0]), where=WHERE)
    std = math.sqrt(2 / 3)
    out = encoder.transform(pd.Series([1, 3, 5]), where=WHERE)
    assert out.dtype == torch.float32 and out.shape == (3,)
    torch.testing.assert_close(out, torch.tensor([-1 / std, 1 / std, 3 / std]))


def test_number_parses_text_and_fills_missing_with_mean():
    encoder = NumberInputEncoder(NumberInput(name="age", normalize="none"))
    encoder.fit(pd.Series(["2", " 4.0 ", None]), where=WHERE)
    out = encoder.transform(pd.Series(["6", None]), where=WHERE)
    torch.testing.assert_close(out, torch.tensor([6.0, 3.0]))


def test_number_minmax_and_zero_fill():
    encoder = NumberInputEncoder(NumberInput(name="x", normalize="minmax", missing="zero"))
    encoder.fit(pd.Series([10.0, 20.0, 30.0]), where=WHERE)
    out = encoder.transform(pd.Series([10.0, 25.0, np.nan]), where=WHERE)
    torch.testing.assert_close(out, torch.tensor([0.0, 0.75, -0.5]))


def test_number_constant_column_does_not_divide_by_zero():
    encoder = NumberInputEncoder(NumberInput(name="x"))
    encoder.fit(pd.Series([5.0, 5.0]), where=WHERE)
    torch.testing.assert_close(
        encoder.transform(pd.Series([5.0, 6.0]), where=WHERE), torch.tensor([0.0, 1.0])
    )


def test_number_state_roundtrip_gives_identical_transform():
    encoder = NumberInputEncoder(NumberInput(name="x"))
    encoder.fit(pd.Series([0.5, 1.5, 9.0, np.nan]), where=WHERE)
    values = pd.Series([0.0, np.nan, 7.0])
    rebuilt = roundtrip(NumberInputEncoder, encoder)
    assert torch.equal(
        rebuilt.transform(values, where=WHERE), encoder.transform(values, where=WHERE)
    )


def test_number_text_value_names_column_row_and_value():
    encoder = NumberInputEncoder(NumberInput(name="age"))
    with pytest.raises(DataError, match=r"data/train.csv: column 'age', row 3: value 'abc'"):
        encoder.fit(pd.Series(["1", "2", "abc"]), where=WHERE)


def test_number_infinity_is_an_error():
    encoder = NumberInputEncoder(NumberInput(name="age"))
    encoder.fit(pd.Series([1.0, 2.0]), where=WHERE)
    with pytest.raises(DataError, match=r"column 'age', row 2: value inf is infinite"):
        encoder.transform(pd.Series([1.0, float("inf")]), where=WHERE)


def test_number_missing_error_names_rows():
    encoder = NumberInputEncoder(NumberInput(name="age", missing="error"))
    with pytest.raises(DataError, match=r"column 'age' has 2 missing values \(rows 2, 4\)"):
        encoder.fit(pd.Series([1.0, None, 2.0, None]), where=WHERE)


def test_number_all_missing_on_train_is_an_error():
    with pytest.raises(DataError, match="no numbers"):
        NumberInputEncoder(NumberInput(name="x")).fit(pd.Series([np.nan, np.nan]), where=WHERE)


def test_number_output_standardises_and_decode_inverts():
    encoder = NumberOutputEncoder(NumberOutput(name="price"))
    encoder.fit(pd.Series([10.0, 20.0, 30.0]), where=WHERE)
    target = encoder.transform(pd.Series([20.0, 40.0]), where=WHERE)
    assert target[0].item() == 0.0
    decoded = roundtrip(NumberOutputEncoder, encoder).decode(target)
    np.testing.assert_allclose(decoded["price"], [20.0, 40.0], rtol=1e-6)


# ---------------------------------------------------------------- binary


@pytest.mark.parametrize(
    ("values", "positive"),
    [
        (["no", "yes", "no"], "yes"),
        ([False, True, True], True),
        ([0, 1, 0], 1),
        (["F", "T", "F"], "T"),
        (["negative", "positive", "negative"], "positive"),
        (["cat", "dog", "cat"], "dog"),  # no positive word: the larger value
    ],
)
def test_binary_default_positive(values, positive):
    encoder = BinaryInputEncoder(BinaryInput(name="flag"))
    encoder.fit(pd.Series(values), where=WHERE)
    expected = torch.tensor([float(v == positive) for v in values])
    assert torch.equal(encoder.transform(pd.Series(values), where=WHERE), expected)


def test_binary_configured_positive_and_mode_fill():
    encoder = BinaryInputEncoder(BinaryInput(name="flag", positive="cat"))
    encoder.fit(pd.Series(["cat", "dog", "cat"]), where=WHERE)
    out = roundtrip(BinaryInputEncoder, encoder).transform(pd.Series(["dog", None]), where=WHERE)
    assert torch.equal(out, torch.tensor([0.0, 1.0]))


def test_binary_third_value_at_fit_is_an_error():
    encoder = BinaryInputEncoder(BinaryInput(name="flag"))
    with pytest.raises(DataError, match=r"column 'flag' has 3 values \('a', 'b', 'c'\)"):
        encoder.fit(pd.Series(["a", "b", "c", "a"]), where=WHERE)


def test_binary_unseen_value_at_transform_names_row_and_value():
    encoder = BinaryInputEncoder(BinaryInput(name="flag"))
    encoder.fit(pd.Series(["yes", "no"]), where=WHERE)
    with pytest.raises(DataError, match=r"column 'flag', row 2: value 'maybe' was not seen"):
        encoder.transform(pd.Series(["yes", "maybe"]), where="data/val.csv")


def test_binary_missing_error():
    encoder = BinaryInputEncoder(BinaryInput(name="flag", missing="error"))
    encoder.fit(pd.Series(["yes", "no"]), where=WHERE)
    with pytest.raises(DataError, match=r"column 'flag' has 1 missing values \(row 1\)"):
        encoder.transform(pd.Series([None, "no"]), where=WHERE)


def test_binary_output_single_class_is_an_error():
    encoder = BinaryOutputEncoder(BinaryOutput(name="churn"))
    with pytest.raises(DataError, match=r"target 'churn' has a single value \('no'\)"):
        encoder.fit(pd.Series(["no", "no"]), where=WHERE)


def test_binary_output_decode_gives_original_values_and_probabilities():
    encoder = BinaryOutputEncoder(BinaryOutput(name="churn"))
    encoder.fit(pd.Series([0, 1, 1]), where=WHERE)
    decoded = roundtrip(BinaryOutputEncoder, encoder).decode(torch.tensor([3.0, -3.0]))
    assert decoded["churn"] == [1, 0] and all(type(v) is int for v in decoded["churn"])
    np.testing.assert_allclose(
        decoded["churn_prob_1"], [1 / (1 + math.exp(-3)), 1 / (1 + math.exp(3))]
    )
    np.testing.assert_allclose(decoded["churn_prob_0"] + decoded["churn_prob_1"], [1.0, 1.0])


# ---------------------------------------------------------------- category


def test_category_vocabulary_by_frequency_then_value():
    encoder = CategoryInputEncoder(CategoryInput(name="city"))
    encoder.fit(pd.Series(["b", "a", "c", "a", "b", None, "d"]), where=WHERE)
    assert encoder.vocabulary == ["a", "b", "c", "d"]
    out = encoder.transform(pd.Series(["a", "b", "zzz", None, "d"]), where=WHERE)
    assert out.dtype == torch.int64
    assert out.tolist() == [1, 2, 0, 0, 4]
    spec = encoder.spec()
    assert spec.vocab_size == 5 and spec.embedding_dim == round(1.6 * 5**0.56)


def test_category_min_count_and_max_categories():
    values = pd.Series(["a"] * 5 + ["b"] * 3 + ["c"] * 2 + ["d"])
    encoder = CategoryInputEncoder(CategoryInput(name="c", min_count=2, max_categories=2))
    encoder.fit(values, where=WHERE)
    assert encoder.vocabulary == ["a", "b"]
    assert encoder.transform(pd.Series(["c", "d", "b"]), where=WHERE).tolist() == [0, 0, 2]


def test_category_int_values_keep_their_type_through_json():
    encoder = CategoryInputEncoder(CategoryInput(name="zip"))
    encoder.fit(pd.Series([10, 20, 20]), where=WHERE)
    rebuilt = roundtrip(CategoryInputEncoder, encoder)
    assert rebuilt.vocabulary == [20, 10]
    # a val column with a missing cell is read as float; 20.0 still finds 20
    assert rebuilt.transform(pd.Series([20.0, np.nan, 10.0]), where=WHERE).tolist() == [1, 0, 2]


def test_category_output_classes_sorted_and_decode_original_type():
    encoder = CategoryOutputEncoder(CategoryOutput(name="digit"))
    encoder.fit(pd.Series([10, 2, 1, 2]), where=WHERE)
    assert encoder.classes == [1, 2, 10]
    assert encoder.transform(pd.Series([10, 1]), where=WHERE).tolist() == [2, 0]
    rebuilt = roundtrip(CategoryOutputEncoder, encoder)
    decoded = rebuilt.decode(torch.tensor([[0.0, 0.0, 5.0], [3.0, 0.0, 0.0]]))
    assert decoded["digit"] == [10, 1] and all(type(v) is int for v in decoded["digit"])
    np.testing.assert_allclose(
        decoded["digit_prob_1"] + decoded["digit_prob_2"] + decoded["digit_prob_10"], [1.0, 1.0]
    )


def test_category_output_strings_sorted_lexicographically():
    encoder = CategoryOutputEncoder(CategoryOutput(name="species"))
    encoder.fit(pd.Series(["setosa", "virginica", "versicolor"]), where=WHERE)
    assert encoder.classes == ["setosa", "versicolor", "virginica"]
    assert encoder.decode(torch.tensor([[0.0, 1.0, 0.0]]))["species"] == ["versicolor"]


def test_category_output_int_labels_read_as_float_stay_ints():
    encoder = CategoryOutputEncoder(CategoryOutput(name="y"))
    encoder.fit(pd.Series([0.0, 1.0, np.nan, 1.0]), where=WHERE)
    assert encoder.classes == [0, 1] and all(type(c) is int for c in encoder.classes)


def test_category_output_unknown_label_names_value_rows_and_known_labels():
    encoder = CategoryOutputEncoder(CategoryOutput(name="species"))
    encoder.fit(pd.Series(["cat", "dog"]), where=WHERE)
    frame = pd.Series(["cat", "cow", "dog", "cow"], index=[10, 11, 12, 13])
    with pytest.raises(DataError) as error:
        encoder.transform(frame, where="data/test.csv")
    message = str(error.value)
    assert "data/test.csv: target 'species' has label 'cow'" in message
    assert "rows 12, 14" in message and "known labels: 'cat', 'dog'" in message


def test_category_output_needs_two_classes():
    with pytest.raises(DataError, match=r"target 'y' has 1 distinct value"):
        CategoryOutputEncoder(CategoryOutput(name="y")).fit(pd.Series(["a", "a"]), where=WHERE)


# ---------------------------------------------------------------- text


def test_text_tokens_vocabulary_and_padding():
    encoder = TextInputEncoder(TextInput(name="review", max_length=4))
    encoder.fit(pd.Series(["Good movie!", "good, GOOD plot", None]), where=WHERE)
    # good x3, then ties by token: '!' ',' 'movie' 'plot'; ids 0-3 are reserved
    assert encoder.state()["tokenizer"]["vocabulary"] == ["good", "!", ",", "movie", "plot"]
    out = encoder.transform(
        pd.Series(["Bad movie!", None, "good good good good good"]), where=WHERE
    )
    assert out.dtype == torch.int64 and out.shape == (3, 4)
    assert out.tolist() == [[1, 7, 5, 0], [0, 0, 0, 0], [4, 4, 4, 4]]
    assert encoder.spec().vocab_size == 9 and encoder.spec().shape == (4,)


def test_text_default_max_length_is_95th_percentile():
    texts = pd.Series([" ".join(["w"] * n) for n in range(1, 21)])  # 1..20 tokens
    encoder = TextInputEncoder(TextInput(name="t"))
    encoder.fit(texts, where=WHERE)
    assert encoder.max_length == math.ceil(np.percentile(np.arange(1, 21), 95))


def test_text_vocab_size_and_case_kept():
    encoder = TextInputEncoder(TextInput(name="t", vocab_size=8, lowercase=False))
    encoder.fit(pd.Series(["A a a b B B B C C C C D"]), where=WHERE)
    assert encoder.state()["tokenizer"]["vocabulary"] == ["C", "B", "a", "A"]
    assert encoder.spec().vocab_size == 8
    rebuilt = roundtrip(TextInputEncoder, encoder)
    values = pd.Series(["A b B a"])
    assert torch.equal(
        rebuilt.transform(values, where=WHERE), encoder.transform(values, where=WHERE)
    )


def test_text_without_tokens_is_an_error():
    with pytest.raises(DataError, match="text column 't' has no words"):
        TextInputEncoder(TextInput(name="t")).fit(pd.Series([None, "  "]), where=WHERE)


def test_text_idf_follows_document_frequency():
    encoder = TextInputEncoder(TextInput(name="t", idf=True))
    encoder.fit(pd.Series(["a b", "a a c", "a"]), where=WHERE)
    vocabulary = encoder.state()["tokenizer"]["vocabulary"]
    idf = dict(zip(vocabulary, encoder.spec().token_weights[4:], strict=True))
    # ln((1 + 3) / (1 + df)) + 1: 'a' is in every row, 'b' and 'c' in one each
    assert idf["a"] == pytest.approx(1.0)
    assert idf["b"] == pytest.approx(math.log(2) + 1, abs=1e-5) == idf["c"]
    rebuilt = roundtrip(TextInputEncoder, encoder)
    assert rebuilt.spec().token_weights == encoder.spec().token_weights


def test_text_labels_keep_their_spelling_in_classes_and_probability_columns() -> None:
    encoder = CategoryOutputEncoder(CategoryOutput(name="dept"))
    encoder.fit(pd.Series(["010", "100", "007", "010"]), where=WHERE)
    assert encoder.classes == ["007", "010", "100"]
    again = roundtrip(CategoryOutputEncoder, encoder)
    assert again.transform(pd.Series(["100", "007"]), where=WHERE).tolist() == [2, 0]
    decoded = again.decode(torch.tensor([[0.0, 3.0, 0.0], [5.0, 0.0, 0.0]]))
    assert decoded["dept"] == ["010", "007"]
    assert [c for c in decoded if c != "dept"] == [
        "dept_prob_007",
        "dept_prob_010",
        "dept_prob_100",
    ]
    with pytest.raises(DataError, match="label '7'"):
        again.transform(pd.Series(["7"]), where=WHERE)  # '7' is not the user's '007'


def test_integer_labels_stay_integers() -> None:
    encoder = CategoryOutputEncoder(CategoryOutput(name="y"))
    encoder.fit(pd.Series([2, 0, 1, 10]), where=WHERE)
    assert encoder.classes == [0, 1, 2, 10]
    decoded = roundtrip(CategoryOutputEncoder, encoder).decode(torch.eye(4)[[3, 1]])
    assert decoded["y"] == [10, 1] and "y_prob_10" in decoded


def test_a_state_fitted_on_cells_typed_by_the_old_csv_reader_still_finds_them() -> None:
    """Before CSV cells stayed text, '007' was read as 7 and 'TRUE' as True; such runs' states
    must still encode the cells the reader now gives as text."""
    labels = CategoryOutputEncoder(CategoryOutput(name="dept"), {"classes": [7, 10, 100]})
    assert labels.transform(pd.Series(["007", "100", "010"]), where=WHERE).tolist() == [0, 2, 1]
    codes = CategoryInputEncoder(CategoryInput(name="plz"), {"vocabulary": [1067, True]})
    found = codes.transform(pd.Series(["01067", "TRUE", "x", None]), where=WHERE)
    assert found.tolist() == [1, 2, 0, 0]
    flags = BinaryInputEncoder(BinaryInput(name="f"), {"values": [False, True], "mode": 0.0})
    assert flags.transform(pd.Series(["TRUE", "False", "true"]), where=WHERE).tolist() == [1, 0, 1]


def test_binary_values_match_by_how_they_read() -> None:
    encoder = BinaryInputEncoder(BinaryInput(name="f"))
    encoder.fit(pd.Series(["TRUE", "FALSE", "TRUE"]), where=WHERE)  # as a CSV gives them
    assert encoder.state()["values"] == ["FALSE", "TRUE"]
    as_bools = pd.Series([True, False])  # the same column from Parquet or a DataFrame
    assert encoder.transform(as_bools, where=WHERE).tolist() == [1.0, 0.0]
    with pytest.raises(DataError, match="'maybe' was not seen"):
        encoder.transform(pd.Series(["maybe"]), where=WHERE)


def test_text_labels_find_the_same_numbers_from_another_reader() -> None:
    """Labels fitted as JSONL strings '0', '1', '2'; a CSV gives the cells as numbers."""
    encoder = CategoryOutputEncoder(CategoryOutput(name="y"), {"classes": ["0", "1", "2"]})
    assert encoder.transform(pd.Series([2, 0, 1.0]), where=WHERE).tolist() == [2, 0, 1]
    zeros = CategoryOutputEncoder(CategoryOutput(name="y"), {"classes": ["007", "010"]})
    with pytest.raises(DataError, match="label 7"):
        zeros.transform(pd.Series([7]), where=WHERE)  # 7 is not the user's '007'
