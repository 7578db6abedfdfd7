"""`megalith export RUN` and `megalith predict BUNDLE` from the command line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from conftest import CliResult
from exported import outputs_table, train_tiny_run

Cli = Callable[..., CliResult]


@pytest.mark.slow  # five CLI calls, each importing torch
def test_export_then_predict_on_the_bundle_as_on_the_run(cli: Cli, tmp_path: Path) -> None:
    train_tiny_run(tmp_path, epochs=2)
    exported = cli("export", "run", "--output", "bundle")
    assert exported.returncode == 0, exported.stderr
    assert "wrote bundle" in exported.stderr
    outputs_table(rows=40, seed=3).to_csv(tmp_path / "new.csv", index=False)
    from_bundle = cli("predict", "bundle", "--data", "new.csv", "--output", "bundle.csv")
    from_run = cli("predict", "run", "--data", "new.csv", "--output", "run.csv")
    assert from_bundle.returncode == 0 and from_run.returncode == 0, from_bundle.stderr
    bundle, run = pd.read_csv(tmp_path / "bundle.csv"), pd.read_csv(tmp_path / "run.csv")
    assert list(bundle.columns) == list(run.columns)
    assert "label_predicted" in bundle.columns
    for column in ("label_predicted", "big_predicted"):
        assert bundle[column].tolist() == run[column].tolist()
    numbers = [c for c in run.columns if "_prob_" in c or c == "score_predicted"]
    assert (bundle[numbers] - run[numbers]).abs().to_numpy().max() <= 1e-4

    again = cli("export", "run", "--output", "bundle")
    assert again.returncode == 2
    assert again.stderr.strip() == (
        "error: --output bundle already holds a bundle; pass --overwrite to replace it"
    )
