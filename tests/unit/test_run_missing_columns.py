"""Predicting on rows without one of the run's input columns: the error names the column and what
the run reads (advice for predict), not the config advice training gets."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import make_table

from megalith.config import validate_config
from megalith.data.preprocess import Preprocessor
from megalith.errors import DataError
from megalith.models import build_model
from megalith.run import Run

CONFIG = {
    "name": "tiny",
    "data": {"source": "table.csv"},
    "inputs": [{"name": "size", "type": "number"}, {"name": "color", "type": "category"}],
    "outputs": [{"name": "label", "type": "category"}],
    "model": {"arch": "mlp", "hidden": [8]},
}


def test_a_run_made_in_python_names_its_input_columns_when_one_is_missing() -> None:
    cfg = validate_config(CONFIG)
    table = make_table(rows=30)
    with pytest.raises(DataError, match="Fix the name in the config"):  # training: the config
        Preprocessor.fit(
            cfg.inputs, cfg.outputs, table.drop(columns="color"), base_dir=None, origin="table.csv"
        )
    preprocessor = Preprocessor.fit(cfg.inputs, cfg.outputs, table, base_dir=None, origin="t")
    model = build_model(cfg.model, preprocessor.input_specs, preprocessor.output_specs)
    run = Run(Path("runs/tiny"), cfg, preprocessor, model)  # as megalith.train returns it

    with pytest.raises(DataError) as refused:
        run.predict(table.drop(columns=["color", "label"]))

    message = str(refused.value)
    assert "column 'color' not found" in message
    assert (
        "the run runs/tiny reads the column(s) 'size', 'color': give the data every one" in message
    )
    assert "config" not in message
    assert len(run.predict(table.drop(columns="label"))) == 30  # with them, it predicts
