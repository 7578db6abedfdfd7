"""infer_config: the types, notices and config `megalith init` writes for a table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from megalith.config import validate_config
from megalith.data.infer import Inference, infer_config, render_config
from megalith.data.sources import Table, load_table
from megalith.errors import DataError

ROWS = 60


def _messy() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    age = rng.normal(40, 10, ROWS).round(1)
    age[[3, 7, 11]] = np.nan
    city = rng.choice(["paris", "lima", "oslo"], ROWS).astype(object)
    city[[0, 1]] = None
    return pd.DataFrame(
        {
            "Unnamed: 0": np.arange(ROWS),
            "user_id": [f"u{i:04d}" for i in range(ROWS)],
            "age": age,
            "city": city,
            "member": rng.choice(["yes", "no"], ROWS),
            "active": rng.choice([True, False], ROWS),
            "country": "fr",
            "empty": np.nan,
            "review": [f"the product was quite good, number {i} of many" for i in range(ROWS)],
            "photo": [f"photos/{i}.JPG" for i in range(ROWS)],
            "signup": [f"2024-01-{i % 28 + 1:02d}" for i in range(ROWS)],
            "zip": [str(75000 + i % 7) if i % 20 else "n/a" for i in range(ROWS)],
            "price": rng.uniform(1, 100, ROWS).round(2),
            "label": rng.choice(["cheap", "fair", "dear"], ROWS),
            "label_copy": None,
        }
    ).assign(label_copy=lambda f: f["label"])


def _infer(frame: pd.DataFrame, target: str, source: str = "data/shop.csv") -> Inference:
    return infer_config(Table(frame, Path("data"), source), target, source=source)


def _types(inference: Inference) -> dict[str, str]:
    return {f["name"]: f["type"] for f in inference.config["inputs"]}


def test_messy_table_types() -> None:
    inference = _infer(_messy(), "label")
    assert _types(inference) == {
        "age": "number",
        "city": "category",
        "member": "binary",
        "active": "binary",
        "review": "text",
        "photo": "image",
        "signup": "category",
        "zip": "category",
        "price": "number",
    }
    assert inference.config["outputs"] == [{"name": "label", "type": "category"}]
    assert inference.config["model"]["arch"] == "cnn"  # image defaults (test_infer_image.py)


def test_messy_table_notices() -> None:
    notices = "\n".join(_infer(_messy(), "label").notices)
    assert "dropped column 'Unnamed: 0': every value is unique (looks like an ID)" in notices
    assert "dropped column 'user_id': every value is unique (looks like an ID)" in notices
    assert "dropped column 'country': every value is 'fr' (constant)" in notices
    assert "dropped column 'empty': every cell is missing" in notices
    assert "dropped column 'label_copy'" in notices and "target" in notices
    assert "column 'age': 3 missing cells, filled with the train mean" in notices
    assert "column 'city': 2 missing cells" in notices
    assert "column 'signup' looks like dates" in notices
    assert "column 'zip' is mostly numbers but holds text such as 'n/a'" in notices


def test_config_shape_and_order() -> None:
    config = _infer(_messy().drop(columns=["photo"]), "price").config
    assert list(config) == ["name", "seed", "data", "inputs", "outputs", "model", "train"]
    assert config["name"] == "shop"
    assert config["data"] == {"source": "data/shop.csv", "split": {"val": 0.1, "test": 0.1}}
    assert config["outputs"] == [{"name": "price", "type": "number"}]
    # review (text) beside numbers and categories: the mixed-table settings (infer_tables.py)
    assert config["model"] == {"arch": "mlp", "hidden": [], "modality_dropout": 0.1}
    assert config["train"] == {
        "epochs": 30,
        "batch_size": 32,
        "optimizer": {"name": "adamw", "lr": 0.01, "weight_decay": 0.1},
        "early_stop": {"metric": "val/loss", "patience": 5},
    }


@pytest.mark.parametrize(("rows", "batch"), [(1999, 32), (2000, 64), (19999, 64), (20000, 128)])
def test_batch_size_grows_with_rows(rows: int, batch: int) -> None:
    frame = pd.DataFrame({"x": np.arange(rows) % 97 * 1.5, "y": np.arange(rows) % 2})
    assert _infer(frame, "y").config["train"]["batch_size"] == batch


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["a", "b"] * 20, "binary"),
        ([True, False] * 20, "binary"),
        ([0, 1, 2, 3] * 10, "category"),
        (["x", "y", "z", "w"] * 10, "category"),
        ([0.5, 1.25, 2.0, 3.75] * 10, "number"),
        (list(range(40)), "number"),  # every value distinct: regression
    ],
)
def test_target_types(values: list[object], expected: str) -> None:
    frame = pd.DataFrame({"f": np.linspace(0, 1, len(values)) ** 2, "t": values})
    assert _infer(frame, "t").config["outputs"] == [{"name": "t", "type": expected}]


def test_target_with_missing_values_is_noticed() -> None:
    frame = pd.DataFrame({"f": np.arange(10) * 0.3, "t": ["a", "b", None, "c"] * 2 + ["a", "b"]})
    assert any("target 't': 2 rows have no value" in n for n in _infer(frame, "t").notices)


def test_unknown_target_suggests_and_lists_columns() -> None:
    with pytest.raises(DataError) as caught:
        _infer(_messy(), "lable")
    message = str(caught.value)
    assert "data/shop.csv" in message and "'lable'" in message
    assert "did you mean 'label'" in message and "price" in message


def test_constant_target_is_an_error() -> None:
    with pytest.raises(DataError, match="one value"):
        _infer(pd.DataFrame({"f": [1.0, 2.0, 3.0], "t": ["a", "a", "a"]}), "t")


def test_no_usable_inputs_is_an_error() -> None:
    frame = pd.DataFrame({"same": ["k"] * 5, "t": [1.0, 2.5, 3.0, 4.5, 5.0]})
    with pytest.raises(DataError) as caught:
        _infer(frame, "t")
    assert "'same'" in str(caught.value) and "constant" in str(caught.value)


def test_split_column_becomes_data_split() -> None:
    frame = pd.DataFrame({"f": np.arange(30) * 0.5, "t": ["a", "b", "c"] * 10})
    frame["fold"] = ["train"] * 20 + ["val"] * 5 + ["test"] * 5
    inference = _infer(frame, "t")
    assert inference.config["data"]["split"] == {"column": "fold"}
    assert "fold" not in _types(inference)


def test_small_tables_keep_distinct_short_strings() -> None:
    frame = pd.DataFrame({"city": ["oslo", "lima", "rome", "bern"], "t": [1.0, 2.5, 3.0, 4.5]})
    assert _types(_infer(frame, "t")) == {"city": "category"}


def test_builtin_uses_declared_features() -> None:
    table = load_table("builtin:digits")
    inference = infer_config(table, "label", source="builtin:digits")
    assert inference.config["inputs"] == [{"name": "image", "type": "image"}]
    assert inference.config["outputs"] == [{"name": "label", "type": "category"}]
    assert inference.config["model"] == {"arch": "cnn"}
    assert inference.config["name"] == "digits"


def test_image_folder_infers_image_and_category(tmp_path: Path) -> None:
    from PIL import Image

    for label in ("cat", "dog"):
        for i in range(3):
            (tmp_path / "pets" / label).mkdir(parents=True, exist_ok=True)
            Image.new("L", (4, 4), i).save(tmp_path / "pets" / label / f"{i}.png")
    table = load_table(str(tmp_path / "pets"))
    inference = infer_config(table, "label", source="pets")
    assert _types(inference) == {"image": "image"}
    assert inference.config["outputs"] == [{"name": "label", "type": "binary"}]
    assert inference.config["model"]["arch"] == "cnn"
    assert inference.config["inputs"][0]["augment"]


def test_rendered_yaml_validates_and_keeps_the_notices() -> None:
    inference = _infer(_messy(), "label", source="my shop.csv")
    text = render_config(inference)
    assert text.startswith("#")
    assert "#   - dropped column 'user_id'" in text
    loaded = yaml.safe_load(text)
    assert loaded == inference.config
    assert list(loaded) == ["name", "seed", "data", "inputs", "outputs", "model", "train"]
    config = validate_config(loaded)
    assert config.name == "my-shop"
    assert [f.type for f in config.inputs][:3] == ["number", "category", "binary"]


def _sentences(rows: int) -> list[str]:
    verbs, things = ["parse", "open", "format", "sort"], ["the header", "a socket", "a date"]
    return [f"{verbs[i % 4]} {things[i % 3]} number {i} twice" for i in range(rows)]


def test_a_text_table_gets_the_measured_text_defaults() -> None:
    frame = pd.DataFrame({"text": _sentences(120), "topic": ["a", "b", "c", "d"] * 30})
    config = _infer(frame, "topic").config
    (text,) = config["inputs"]
    assert text == {
        "name": "text",
        "type": "text",
        "tokenizer": "word",
        "ngrams": 2,
        "vocab_size": 50000,
        "embedding_dim": 256,
    }
    assert config["model"] == {"arch": "mlp", "hidden": []}
    assert config["train"]["optimizer"] == {"name": "adamw", "lr": 0.01, "weight_decay": 0.1}
    validate_config(config, origin="test")


def test_a_mixed_table_gets_the_mixed_table_settings() -> None:
    frame = pd.DataFrame(
        {
            "notes": _sentences(120),
            "size": np.random.default_rng(0).normal(size=120).round(1),
            "topic": ["a", "b", "c", "d"] * 30,
        }
    )
    config = _infer(frame, "topic").config
    assert config["model"] == {"arch": "mlp", "hidden": [], "modality_dropout": 0.1}
    assert config["inputs"][0]["ngrams"] == 2


@pytest.mark.parametrize(
    ("marks", "split"),
    [
        (["train", "val", "test"], {"column": "fold"}),
        (["train", "test"], {"column": "fold", "val": 0.1}),
        (["train", "dev"], {"column": "fold", "test": 0.1}),
    ],
)
def test_a_split_column_lacking_a_split_carves_it_from_train(
    marks: list[str], split: dict[str, object]
) -> None:
    frame = pd.DataFrame({"f": np.arange(30) * 0.5, "t": ["a", "b", "c"] * 10})
    frame["fold"] = [marks[i % len(marks)] for i in range(30)]
    inference = _infer(frame, "t")
    assert inference.config["data"]["split"] == split
    carved = [n for n in inference.notices if "marks no" in n]
    assert len(carved) == len(split) - 1
    validate_config(yaml.safe_load(render_config(inference)))


def test_a_column_without_train_rows_is_not_a_split_column() -> None:
    frame = pd.DataFrame({"f": np.arange(30) * 0.5, "t": ["a", "b", "c"] * 10})
    frame["fold"] = ["val", "test"] * 15
    inference = _infer(frame, "t")
    assert inference.config["data"]["split"] == {"val": 0.1, "test": 0.1}
    assert _types(inference)["fold"] == "binary"


def test_digit_codes_kept_as_text_are_categories(tmp_path: Path) -> None:
    rows = ["plz,dept,size"] + [
        f"{['01067', '10115', '04109'][i % 3]},{['007', '010', '100'][i % 3]},{i * 1.5}"
        for i in range(30)
    ]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    table = load_table(str(tmp_path / "t.csv"))
    inference = infer_config(table, "dept", source="t.csv")
    assert _types(inference) == {"plz": "category", "size": "number"}
    assert inference.config["outputs"] == [{"name": "dept", "type": "category"}]
    assert any(
        "'plz' holds codes written in digits (such as '01067')" in n for n in inference.notices
    )
    assert "delimiter" not in inference.config["data"]  # a plain CSV needs no reader settings


def test_a_semicolon_file_records_its_dialect(tmp_path: Path) -> None:
    rows = ["flaeche;typ;preis"] + [f"{30 + i},5;{'AN'[i % 2]};{i * 10},25" for i in range(30)]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    inference = infer_config(load_table(str(tmp_path / "t.csv")), "preis", source="t.csv")
    data = inference.config["data"]
    assert (data["format"], data["delimiter"], data["decimal"]) == ("csv", ";", ",")
    assert inference.notices[0].startswith(
        "read as a CSV file semicolon-separated with decimal commas"
    )
    assert _types(inference) == {"flaeche": "number", "typ": "binary"}
    assert inference.config["outputs"] == [{"name": "preis", "type": "number"}]


def test_a_missing_target_in_a_one_column_header_blames_the_separator() -> None:
    frame = pd.DataFrame({"a|b|target": ["1|2|3", "4|5|6"]})
    with pytest.raises(DataError) as caught:
        _infer(frame, "target")
    message = str(caught.value)
    assert "read as one column ('a|b|target')" in message and "data.delimiter: '|'" in message


def test_the_rarer_of_two_plain_values_is_the_positive_class() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"amount": rng.normal(size=200), "outcome": np.where(np.arange(200) < 12, "fraud", "ok")}
    )
    inference = _infer(frame, "outcome")
    assert inference.config["outputs"] == [
        {"name": "outcome", "type": "binary", "positive": "fraud"}
    ]
    assert any("rarer value 'fraud' (6.0% of rows)" in n for n in inference.notices)
    frame["flag"] = np.where(np.arange(200) < 12, "yes", "no")  # 'yes' names itself
    assert "positive" not in _infer(frame.drop(columns="outcome"), "flag").config["outputs"][0]
