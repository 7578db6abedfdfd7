"""`megalith init` writes only configs that train: init, then train one epoch, on every shape of
table init recognises (each case a small table, through the CLI's entry point in this process)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import make_table, run_cli
from PIL import Image

ROWS = 60


def _with_split(values: list[str]) -> Callable[[Path], tuple[str, str]]:
    def write(root: Path) -> tuple[str, str]:
        table = make_table(rows=ROWS)
        table["split"] = [values[i % len(values)] for i in range(ROWS)]
        table.to_csv(root / "t.csv", index=False)
        return "t.csv", "label"

    return write


def _separated(separator: str, name: str) -> Callable[[Path], tuple[str, str]]:
    def write(root: Path) -> tuple[str, str]:
        make_table(rows=ROWS).to_csv(root / name, sep=separator, index=False)
        return name, "label"

    return write


def _german(root: Path) -> tuple[str, str]:
    rng = np.random.default_rng(0)
    area = rng.uniform(30, 120, ROWS).round(1)
    rooms = rng.integers(1, 5, ROWS)
    kind = rng.choice(["Altbau", "Neubau"], ROWS)
    price = (area * 11.5 + (kind == "Neubau") * 80).round(2)
    lines = ["flaeche;zimmer;typ;preis"] + [
        f"{a};{r};{k};{p}".replace(".", ",")
        for a, r, k, p in zip(area, rooms, kind, price, strict=True)
    ]
    (root / "wohnungen.csv").write_text("\n".join(lines) + "\n")
    return "wohnungen.csv", "preis"


def _parquet(root: Path) -> tuple[str, str]:
    make_table(rows=ROWS).to_parquet(root / "t.parquet")
    return "t.parquet", "label"


def _jsonl(root: Path) -> tuple[str, str]:
    make_table(rows=ROWS).to_json(root / "t.jsonl", orient="records", lines=True)
    return "t.jsonl", "label"


def _text(root: Path) -> tuple[str, str]:
    rng = np.random.default_rng(0)
    good = ["great value and works well", "really happy with this one", "lovely, would buy"]
    bad = ["broke after a day of use", "poor quality and too slow", "would not buy it again"]
    label = rng.choice(["pos", "neg"], ROWS)
    review = [f"{rng.choice(good if y == 'pos' else bad)} number {i}" for i, y in enumerate(label)]
    pd.DataFrame({"review": review, "label": label}).to_csv(root / "t.csv", index=False)
    return "t.csv", "label"


def _image_paths(root: Path) -> tuple[str, str]:
    (root / "img").mkdir()
    labels = ["dark", "light"] * (ROWS // 4)
    for i, label in enumerate(labels):
        shade = 30 if label == "dark" else 220
        Image.new("RGB", (8, 8), (shade, shade, shade)).save(root / "img" / f"{i}.png")
    frame = pd.DataFrame({"photo": [f"img/{i}.png" for i in range(len(labels))], "kind": labels})
    frame.to_csv(root / "t.csv", index=False)
    return "t.csv", "kind"


def _image_folder(root: Path) -> tuple[str, str]:
    for label, shade in (("dark", 30), ("light", 220)):
        (root / "pics" / label).mkdir(parents=True)
        for i in range(12):
            Image.new("L", (8, 8), shade + i).save(root / "pics" / label / f"{i}.png")
    return "pics", "label"


def _sequences(root: Path) -> tuple[str, str]:
    rng = np.random.default_rng(0)
    rising = rng.random(ROWS) < 0.5
    cells = [
        " ".join(f"{v:.2f}" for v in (np.arange(6) * (1 if up else -1) + rng.normal(0, 0.1, 6)))
        for up in rising
    ]
    frame = pd.DataFrame({"series": cells, "trend": np.where(rising, "up", "down")})
    frame.to_csv(root / "t.csv", index=False)
    return "t.csv", "trend"


def _codes_dates_and_gaps(root: Path) -> tuple[str, str]:
    rng = np.random.default_rng(0)
    table = make_table(rows=ROWS)
    table["plz"] = rng.choice(["01067", "10115", "04109"], ROWS)
    table["signup"] = [f"2024-01-{i % 28 + 1:02d}" for i in range(ROWS)]
    table["dept"] = np.where(
        table["label"] == "high", "007", np.where(table["plz"] == "01067", "010", "100")
    )
    table.loc[[3, 9], "size"] = np.nan
    table.loc[[5], "dept"] = None
    table.drop(columns=["label"]).to_csv(root / "t.csv", index=False)
    return "t.csv", "dept"


@dataclass
class Shape:
    write: Callable[[Path], tuple[str, str]]
    expect: dict[str, Any]
    """Dotted config keys init must write, with their values."""


SHAPES = {
    "category target": Shape(_separated(",", "t.csv"), {"outputs.0.type": "category"}),
    "number target": Shape(lambda r: (_separated(",", "t.csv")(r)[0], "size"), {}),
    "binary target": Shape(lambda r: (_separated(",", "t.csv")(r)[0], "member"), {}),
    "semicolons, decimal commas": Shape(
        _german, {"data.delimiter": ";", "data.decimal": ",", "inputs.0.type": "number"}
    ),
    "tab-separated .tsv": Shape(_separated("\t", "t.tsv"), {"data.delimiter": "\t"}),
    "pipe-separated": Shape(_separated("|", "t.csv"), {"data.delimiter": "|"}),
    "parquet": Shape(_parquet, {}),
    "jsonl": Shape(_jsonl, {}),
    "split column train/val/test": Shape(
        _with_split(["train"] * 3 + ["val", "test"]), {"data.split": {"column": "split"}}
    ),
    "split column train/test": Shape(
        _with_split(["train"] * 4 + ["test"]), {"data.split": {"column": "split", "val": 0.1}}
    ),
    "split column train/validation": Shape(
        _with_split(["train"] * 4 + ["validation"]),
        {"data.split": {"column": "split", "test": 0.1}},
    ),
    "text column": Shape(_text, {"inputs.0.type": "text"}),
    "image paths": Shape(_image_paths, {"inputs.0.type": "image", "model.arch": "cnn"}),
    "image folder": Shape(_image_folder, {"model.arch": "cnn"}),
    "number sequences": Shape(_sequences, {"inputs.0.type": "sequence"}),
    "codes, dates and gaps": Shape(_codes_dates_and_gaps, {"outputs.0.type": "category"}),
    "builtin dataset": Shape(lambda root: ("builtin:iris", "species"), {}),
}


def _get(config: dict[str, Any], dotted: str) -> Any:
    value: Any = config
    for key in dotted.split("."):
        value = value[int(key)] if isinstance(value, list) else value[key]
    return value


@pytest.mark.parametrize("shape", SHAPES.values(), ids=list(SHAPES))
def test_init_writes_a_config_that_trains(
    shape: Shape, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    data, target = shape.write(tmp_path)
    init = run_cli("init", data, "--target", target, "--output", "cfg.yaml")
    assert init.code == 0, init.stderr
    config = yaml.safe_load((tmp_path / "cfg.yaml").read_text())
    for key, value in shape.expect.items():
        assert _get(config, key) == value, (key, config)
    trained = run_cli("train", "cfg.yaml", "-o", "run", "--set", "train.epochs=1")
    assert trained.code == 0, trained.stderr[-3000:]
    assert (tmp_path / "run" / "model.safetensors").is_file()
    assert (tmp_path / "run" / "eval.json").is_file()


def test_a_train_test_split_column_is_noted_by_init_and_by_train(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _with_split(["train"] * 4 + ["test"])(tmp_path)
    init = run_cli("init", "t.csv", "--target", "label", "--output", "cfg.yaml")
    assert "split column 'split' marks no val rows: 10% of its train rows" in init.stderr
    trained = run_cli("train", "cfg.yaml", "-o", "run", "--set", "train.epochs=1")
    assert trained.code == 0, trained.stderr
    printed = " ".join(trained.stderr.split())  # the console wraps long lines
    assert "split column 'split' marks no val rows: data.split.val=0.1 of its train" in printed
    assert "43 train / 5 val / 12 test rows" in printed  # 48 train rows, 10% held out


def test_init_notes_the_dialect_and_blames_the_separator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _german(tmp_path)
    init = run_cli("init", "wohnungen.csv", "--target", "preis")
    assert init.code == 0, init.stderr
    assert "read as a CSV file semicolon-separated with decimal commas" in init.stderr
    forced = run_cli("init", "wohnungen.csv", "--target", "preis", "--delimiter", ",")
    assert forced.code == 2 and "Traceback" not in forced.stderr
    assert "target column 'preis' is not in the table" in forced.stderr
    assert "read as one column ('flaeche;zimmer;typ;preis')" in forced.stderr
    assert "--delimiter ';'" in forced.stderr
    bad = run_cli("init", "wohnungen.csv", "--target", "preis", "--decimal", "x")
    assert bad.code == 2 and "--decimal: Input should be 'auto', '.' or ','" in bad.stderr
