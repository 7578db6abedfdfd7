"""Preprocessor: column checks, dropped targets, JSON save / load, decode, TensorTable."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from megalith.data.features import (
    BinaryOutput,
    CategoryInput,
    CategoryOutput,
    ImageInput,
    NumberInput,
    NumberOutput,
    TextInput,
)
from megalith.data.preprocess import Preprocessor
from megalith.data.specs import InputSpec, OutputSpec
from megalith.data.tensors import TensorTable
from megalith.errors import ConfigError, DataError

ORIGIN = "data/train.csv"


@pytest.fixture
def table(tmp_path):
    for i in range(6):
        Image.fromarray(np.full((4, 4, 3), 40 * i, np.uint8)).save(tmp_path / f"{i}.png")
    return pd.DataFrame(
        {
            "age": [20, 30, None, 50, 60, 70],
            "city": ["rome", "oslo", "rome", None, "lima", "rome"],
            "review": ["great!", "bad", "ok ok", None, "great great", "meh"],
            "photo": [f"{i}.png" for i in range(6)],
            "label": ["b", "a", None, "a", "b", "c"],
            "price": [1.0, 2.0, 3.0, None, 5.0, 6.0],
            "churn": ["yes", "no", "no", "yes", "no", "yes"],
        }
    )


INPUTS = [
    NumberInput(name="age"),
    CategoryInput(name="city"),
    TextInput(name="review"),
    ImageInput(name="photo"),
]
OUTPUTS = [CategoryOutput(name="label"), NumberOutput(name="price"), BinaryOutput(name="churn")]


def fit(table, tmp_path, inputs=INPUTS, outputs=OUTPUTS):
    return Preprocessor.fit(inputs, outputs, table, base_dir=tmp_path, origin=ORIGIN)


def test_fit_transform_drops_rows_missing_any_target(table, tmp_path):
    pre = fit(table, tmp_path)
    assert pre.last_dropped == {"label": [2], "price": [3]}
    assert pre.dropped_notices() == [
        "dropped 1 row whose target 'label' is missing (row 3)",
        "dropped 1 row whose target 'price' is missing (row 4)",
    ]
    tensors = pre.transform(table, base_dir=tmp_path, origin=ORIGIN)
    assert len(tensors) == 4 and tensors.rows.tolist() == [0, 1, 4, 5]
    assert tensors.inputs["age"].shape == (4,) and tensors.inputs["photo"].shape == (4, 3, 4, 4)
    assert tensors.targets["label"].tolist() == [1, 0, 1, 2]  # classes a, b, c
    assert tensors.targets["churn"].tolist() == [1.0, 0.0, 0.0, 1.0]
    # age standardised with the mean / std of the kept train rows 20, 30, 60, 70
    torch.testing.assert_close(
        tensors.inputs["age"][0], torch.tensor(-25 / np.std([20, 30, 60, 70])).float()
    )


def test_specs(table, tmp_path):
    pre = fit(table, tmp_path)
    assert [s.type for s in pre.input_specs] == ["number", "category", "text", "image"]
    assert all(isinstance(s, InputSpec) for s in pre.input_specs)
    assert pre.input_specs[1].vocab_size == 4  # unknown + rome, lima, oslo
    assert pre.output_specs == [
        OutputSpec("label", "category", 3),
        OutputSpec("price", "number", 0, mean=3.5, std=float(np.std([1.0, 2.0, 5.0, 6.0]))),
        OutputSpec("churn", "binary", 2),
    ]


def test_save_load_gives_identical_transform(table, tmp_path):
    pre = fit(table, tmp_path)
    path = tmp_path / "preprocessor.json"
    pre.save(path)
    assert json.loads(path.read_text())["format"] == "megalith.preprocessor"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    loaded = Preprocessor.load(path)
    assert loaded.to_json() == pre.to_json()
    assert loaded.input_specs == pre.input_specs and loaded.output_specs == pre.output_specs
    a = pre.transform(table, base_dir=tmp_path, origin=ORIGIN)
    b = loaded.transform(table, base_dir=tmp_path, origin=ORIGIN)
    for group in ("inputs", "targets"):
        for name, tensor in getattr(a, group).items():
            assert torch.equal(tensor, getattr(b, group)[name]), name


def test_without_targets_output_columns_are_not_needed(table, tmp_path):
    pre = fit(table, tmp_path)
    tensors = pre.transform(
        table.drop(columns=["label", "price", "churn"]),
        base_dir=tmp_path,
        origin="new.csv",
        with_targets=False,
    )
    assert len(tensors) == 6 and tensors.targets == {} and pre.last_dropped == {}


def test_decode_gives_original_labels_and_probabilities(table, tmp_path):
    pre = fit(table, tmp_path)
    logits = torch.tensor([[0.0, 4.0, 0.0], [4.0, 0.0, 0.0]])
    price = pre.transform(table, base_dir=tmp_path, origin=ORIGIN).targets["price"][:2]
    frame = pre.decode({"label": logits, "price": price, "churn": torch.tensor([5.0, -5.0])})
    assert frame["label"].tolist() == ["b", "a"]
    np.testing.assert_allclose(frame["price"], [1.0, 2.0], rtol=1e-5)
    assert frame["churn"].tolist() == ["yes", "no"]
    assert {
        "label_prob_a",
        "label_prob_b",
        "label_prob_c",
        "churn_prob_no",
        "churn_prob_yes",
    } <= set(frame.columns)
    np.testing.assert_allclose(
        frame[["label_prob_a", "label_prob_b", "label_prob_c"]].sum(axis=1), 1.0
    )


def test_absent_column_names_origin_suggestion_and_columns(table, tmp_path):
    with pytest.raises(DataError) as error:
        fit(table, tmp_path, outputs=[CategoryOutput(name="lable")])
    message = str(error.value)
    assert message.startswith("data/train.csv: column 'lable' (did you mean 'label'?) not found")
    assert "age, city, review, photo, label, price, churn" in message


def test_missing_target_error_names_rows(table, tmp_path):
    outputs = [CategoryOutput(name="label", missing="error")]
    with pytest.raises(DataError, match=r"data/train.csv: target 'label' is missing in row 3;"):
        fit(table, tmp_path, outputs=outputs)


def test_unknown_label_in_validation_split(table, tmp_path):
    pre = fit(table, tmp_path)
    val = table.assign(label=["a", "b", "zebra", "a", "b", "c"])
    with pytest.raises(DataError, match=r"data/val.csv: target 'label' has label 'zebra'.*row 3"):
        pre.transform(val, base_dir=tmp_path, origin="data/val.csv")


def test_duplicate_feature_names_are_a_config_error(table, tmp_path):
    with pytest.raises(ConfigError, match="'age' listed twice"):
        fit(table, tmp_path, inputs=[NumberInput(name="age"), CategoryInput(name="age")])


def test_load_reports_missing_and_invalid_files(tmp_path):
    with pytest.raises(DataError, match="preprocessor file not found"):
        Preprocessor.load(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DataError, match="cannot read the preprocessor"):
        Preprocessor.load(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text('{"format": "something"}')
    with pytest.raises(DataError, match="not a Megalith preprocessor"):
        Preprocessor.load(tmp_path / "other.json")
    broken = {
        "format": "megalith.preprocessor",
        "version": 1,
        "inputs": [{"config": {}}],
        "outputs": [],
    }
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    with pytest.raises(DataError, match="preprocessor state is invalid"):
        Preprocessor.load(tmp_path / "broken.json")


def test_tensor_table_select_and_to():
    table = TensorTable(
        inputs={"x": torch.arange(4.0)},
        targets={"y": torch.tensor([0, 1, 0, 1])},
        rows=np.array([10, 11, 12, 13]),
    )
    picked = table.select(torch.tensor([3, 1]))
    assert len(picked) == 2 and picked.rows.tolist() == [13, 11]
    assert picked.inputs["x"].tolist() == [3.0, 1.0] and picked.targets["y"].tolist() == [1, 1]
    moved = table.to("cpu")
    assert moved.inputs["x"].device.type == "cpu" and moved.rows is table.rows
    with pytest.raises(ValueError, match="tensor 'y' has 2 rows"):
        TensorTable(inputs={}, targets={"y": torch.zeros(2)}, rows=np.arange(3))
