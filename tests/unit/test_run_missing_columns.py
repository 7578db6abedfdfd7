"""Predicting on rows without one of the run's input columns: the error names the column and what
the run reads (advice for predict), not the config advice training gets."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from conftest import make_table
from rich.console import Console

from megalith.config import validate_config
from megalith.data.preprocess import Preprocessor
from megalith.errors import DataError
from megalith.pipeline import train

CONFIG = {
    "name": "tiny",
    "data": {"source": "table.csv"},
    "inputs": [{"name": "size", "type": "number"}, {"name": "color", "type": "category"}],
    "outputs": [{"name": "label", "type": "category"}],
    "model": {"arch": "mlp", "hidden": [8]},
}


@pytest.mark.slow  # trains one epoch of a tiny MLP
def test_the_run_train_returns_names_its_input_columns_when_one_is_missing(tmp_path: Path) -> None:
    cfg = validate_config(CONFIG)
    table = make_table(rows=40)
    with pytest.raises(DataError, match="Fix the name in the config"):  # training: the config
        Preprocessor.fit(
            cfg.inputs, cfg.outputs, table.drop(columns="color"), base_dir=None, origin="table.csv"
        )
    table.to_csv(tmp_path / "table.csv", index=False)
    run = train(
        {**CONFIG, "data": {"source": str(tmp_path / "table.csv")}},
        output_dir=tmp_path / "tiny",
        overrides=["train.epochs=1"],
        console=Console(file=io.StringIO()),
    )

    with pytest.raises(DataError) as refused:
        run.predict(table.drop(columns=["color", "label"]))

    message = str(refused.value)
    assert "column 'color' not found" in message
    reads = "reads the column(s) 'size', 'color': give the data every one"
    assert f". The run {tmp_path / 'tiny'} {reads}" in message  # a sentence of its own
    assert "config" not in message
    assert len(run.predict(table.drop(columns="label"))) == 40  # with them, it predicts
