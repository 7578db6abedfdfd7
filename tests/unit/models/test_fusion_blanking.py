"""Modality dropout blanks an input in training exactly as a missing cell reads at prediction,
for every input type of a mixed table (sets included), at a rate that may differ per input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from megalith.config import validate_config
from megalith.data.preprocess import Preprocessor
from megalith.errors import ConfigError
from megalith.models.fusion import ModalityDropout

INPUTS = [
    {"name": "memo", "type": "text", "tokenizer": "word", "ngrams": 2},
    {"name": "imports", "type": "set"},
    {"name": "size_kb", "type": "number", "transform": "log"},
    {"name": "files", "type": "number", "transform": "quantile"},
    {"name": "folder", "type": "category"},
    {"name": "private", "type": "binary"},
]


def _fitted(rows: int = 120) -> tuple[Preprocessor, pd.DataFrame]:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "memo": [f"parse the w{i % 7} header" for i in range(rows)],
            "imports": [f"os re{i % 5} json{i % 3}" for i in range(rows)],
            "size_kb": rng.exponential(100, rows),
            "files": rng.exponential(10, rows),
            "folder": [f"f{i % 4}" for i in range(rows)],
            "private": ["yes" if i % 2 else "no" for i in range(rows)],
            "label": [str(i % 3) for i in range(rows)],
        }
    )
    config = validate_config(
        {
            "data": {"source": "table.csv"},
            "inputs": INPUTS,
            "outputs": [{"name": "label", "type": "category"}],
        }
    )
    preprocessor = Preprocessor.fit(
        config.inputs, config.outputs, frame, base_dir=None, origin="table.csv"
    )
    return preprocessor, frame.drop(columns=["label"])


def _encoded(preprocessor: Preprocessor, frame: pd.DataFrame) -> dict[str, torch.Tensor]:
    arrays = preprocessor.encode_inputs(frame, base_dir=None, origin="table.csv")
    return {name: torch.as_tensor(np.asarray(value)) for name, value in arrays.items()}


def test_a_blanked_input_in_training_is_what_a_missing_cell_gives_at_prediction() -> None:
    preprocessor, frame = _fitted()
    present = _encoded(preprocessor, frame)
    drop = ModalityDropout(preprocessor.input_specs, p=0.5).train()
    torch.manual_seed(0)
    blanked = drop(present)
    for spec in preprocessor.input_specs:
        missing = frame.copy()
        missing[spec.name] = np.nan if spec.type == "number" else None
        expected = _encoded(preprocessor, missing)[spec.name][0]  # a missing cell's tensor
        seen = blanked[spec.name].reshape(len(frame), -1)
        is_blank = (seen == expected.reshape(1, -1)).all(dim=1)
        was_blank = (present[spec.name].reshape(len(frame), -1) == expected.reshape(1, -1)).all(1)
        share = float(is_blank[~was_blank].float().mean())
        assert 0.35 < share < 0.65, (spec.name, share)  # a set is a text tensor: blanked too


def test_each_input_may_have_its_own_rate_and_unknown_names_are_refused() -> None:
    preprocessor, frame = _fitted(2000)
    present = _encoded(preprocessor, frame)
    specs = preprocessor.input_specs
    drop = ModalityDropout(specs, p=0.1, by_input={"folder": 0.6, "private": 0.0}).train()
    torch.manual_seed(0)
    blanked = drop(present)
    shares = {
        name: float((blanked[name] != present[name]).reshape(2000, -1).any(dim=1).float().mean())
        for name in ("folder", "imports", "private")
    }
    # folder 'f0' is index 1 (never 0), so every blanked row shows; imports always has names
    assert 0.55 < shares["folder"] < 0.65 and 0.07 < shares["imports"] < 0.13, shares
    assert shares["private"] == 0.0
    with pytest.raises(ConfigError, match="no input named colour; the inputs are memo"):
        ModalityDropout(specs, p=0.1, by_input={"colour": 0.5})
    with pytest.raises(ConfigError, match=r"modality_dropout_by_input.folder: must be in \[0, 1\)"):
        ModalityDropout(specs, p=0.1, by_input={"folder": 1.0})
