"""A trained model's missing-column error says that a table column may be given empty (its cells
then read as missing, which modality dropout trains for)."""

from __future__ import annotations

import pandas as pd
import pytest

from megalith.config import validate_config
from megalith.data.preprocess import Preprocessor
from megalith.errors import DataError

FRAME = pd.DataFrame(
    {
        "memo": [f"parse the w{i % 7} header" for i in range(40)],
        "size": [float(i) for i in range(40)],
        "folder": [f"f{i % 4}" for i in range(40)],
        "label": [str(i % 2) for i in range(40)],
    }
)


def _fitted(inputs: list[dict[str, str]]) -> Preprocessor:
    config = validate_config(
        {
            "data": {"source": "t.csv"},
            "inputs": inputs,
            "outputs": [{"name": "label", "type": "category"}],
        }
    )
    preprocessor = Preprocessor.fit(
        config.inputs, config.outputs, FRAME, base_dir=None, origin="t.csv"
    )
    preprocessor.trained_model = "the run runs/r"
    return preprocessor


def test_a_missing_table_column_may_be_given_empty() -> None:
    preprocessor = _fitted(
        [
            {"name": "memo", "type": "text"},
            {"name": "size", "type": "number"},
            {"name": "folder", "type": "category"},
        ]
    )
    with pytest.raises(DataError, match=r"The run runs/r reads .* may be given empty"):
        preprocessor.encode_inputs(
            FRAME.drop(columns=["folder", "memo"]), origin="new.csv", base_dir=None
        )
    blank = FRAME.drop(columns="label").assign(folder=None, memo=None)
    assert len(preprocessor.encode_inputs(blank, origin="new.csv", base_dir=None)["folder"]) == 40
