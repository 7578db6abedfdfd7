"""`--exporter torchscript`: PyTorch's legacy tracer as a fallback, checked like the default."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from conftest import CliResult
from exported import outputs_table, train_tiny_run
from test_export_families import text_table

import megalith as mg
from megalith.runtime import load_bundle

Cli = Callable[..., CliResult]


@pytest.mark.slow  # CLI calls, each importing torch
def test_the_torchscript_exporter_writes_a_bundle_that_predicts_as_the_run(
    cli: Cli, tmp_path: Path
) -> None:
    train_tiny_run(tmp_path, epochs=2)
    exported = cli("export", "run", "--output", "bundle", "--exporter", "torchscript")
    assert exported.returncode == 0, exported.stderr
    described = json.loads((tmp_path / "bundle" / "bundle.json").read_text())
    assert described["verified"]["exporter"] == "torchscript"
    new = outputs_table(rows=40, seed=3)
    found, expected = (
        load_bundle(tmp_path / "bundle").predict(new),
        mg.load(tmp_path / "run").predict(new),
    )
    for column in ("label", "big"):
        assert found[column].tolist() == expected[column].tolist()
    numbers = [c for c in expected.columns if "_prob_" in c or c == "score"]
    assert (found[numbers] - expected[numbers]).abs().to_numpy().max() <= 1e-4

    unknown = cli("export", "run", "--output", "other", "--exporter", "onnxscript")
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == (
        "error: --exporter onnxscript: unknown; choose dynamo or torchscript"
    )
    assert not (tmp_path / "other").exists()


@pytest.mark.slow  # a few training steps and a trace
def test_a_text_transformer_traced_by_torchscript_keeps_a_free_length(tmp_path: Path) -> None:
    text_table().to_csv(tmp_path / "text.csv", index=False)
    encoder = {"kind": "transformer", "hidden": 8, "heads": 2}
    config = {
        "data": {"source": str(tmp_path / "text.csv")},
        "inputs": [{"name": "text", "type": "text", "embedding_dim": 16, "encoder": encoder}],
        "outputs": [{"name": "label", "type": "binary"}],
        "model": {"arch": "mlp", "hidden": [8]},
        "train": {"epochs": 1, "max_steps": 3, "batch_size": 32},
    }
    run = mg.train(config, output_dir=tmp_path / "run")
    bundle = run.export(tmp_path / "bundle", exporter="torchscript")
    verified = json.loads((bundle / "bundle.json").read_text())["verified"]
    assert len(verified["lengths"]) == 2  # checked at the fitted length and a shorter cut
    rows = pd.DataFrame({"text": ["good movie", "the plot was very very bad " * 3, "a"]})
    found, expected = load_bundle(bundle).predict(rows), run.predict(rows)
    assert found["label"].tolist() == expected["label"].tolist()
    probabilities = [c for c in expected.columns if "_prob_" in c]
    assert (found[probabilities] - expected[probabilities]).abs().to_numpy().max() <= 1e-4
