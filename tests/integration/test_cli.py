"""The real command line, end to end, on tiny data."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import yaml
from conftest import REPO, CliResult, make_table

Cli = Callable[..., CliResult]


def _ok(result: CliResult) -> CliResult:
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_help_is_fast_because_it_imports_nothing_heavy(cli: Cli) -> None:
    code = "import sys, megalith.cli; print([m for m in ('torch', 'pandas') if m in sys.modules])"
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    result = _ok(cli("--help"))
    verbs = (
        "train",
        "evaluate",
        "predict",
        "generate",
        "merge",
        "explain",
        "export",
        "serve",
        "compress",
        "tune",
        "report",
        "compare",
        "init",
        "datasets",
    )
    for verb in (*verbs, "schema"):
        assert verb in result.stdout


def test_init_train_predict_evaluate_on_a_csv(cli: Cli, tmp_path: Path, table_csv: Path) -> None:
    init = _ok(cli("init", table_csv, "--target", "label", "--output", "cfg.yaml"))
    assert "constant" in init.stderr and "id" in init.stderr  # dropped with a notice
    config = yaml.safe_load((tmp_path / "cfg.yaml").read_text())
    assert {f["name"]: f["type"] for f in config["inputs"]} == {
        "size": "number",
        "color": "category",
        "member": "binary",
    }

    _ok(cli("train", "cfg.yaml", "--output-dir", "run", "--set", "train.epochs=25"))
    run = tmp_path / "run"
    for name in (
        "config.yaml",
        "model.safetensors",
        "preprocessor.json",
        "metrics.jsonl",
        "eval.json",
    ):
        assert (run / name).is_file(), name
    scores = json.loads((run / "eval.json").read_text())
    assert scores["test"]["accuracy"] > 0.75
    assert set(scores["test"]) >= {"loss", "accuracy", "macro_f1"}
    assert len(list((run / "checkpoints").glob("step-*"))) <= 2

    new_rows = make_table(rows=40, seed=7)
    new_rows.drop(columns=["label"]).to_csv(tmp_path / "new.csv", index=False)
    _ok(cli("predict", "run", "--data", "new.csv", "--output", "pred.csv"))
    predictions = pd.read_csv(tmp_path / "pred.csv")
    assert len(predictions) == 40
    probs = predictions[[f"label_prob_{c}" for c in ("high", "low", "mid")]]
    assert ((probs.sum(axis=1) - 1).abs() < 1e-4).all()
    assert (predictions["label"] == new_rows["label"]).mean() > 0.7

    new_rows.to_csv(tmp_path / "labelled.csv", index=False)
    evaluated = json.loads(_ok(cli("evaluate", "run", "--data", "labelled.csv")).stdout)
    assert evaluated["accuracy"] > 0.7
    default = json.loads(_ok(cli("evaluate", "run")).stdout)
    assert abs(default["accuracy"] - scores["test"]["accuracy"]) < 1e-6


def test_mistakes_get_one_line_and_exit_code_2(cli: Cli, tmp_path: Path, table_csv: Path) -> None:
    config = {
        "data": {"source": str(table_csv)},
        "inputs": [{"name": "size", "type": "number"}],
        "outputs": [{"name": "label", "type": "category"}],
        "train": {"epochs": 1},
    }
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(config))
    cases = {
        ("train", "cfg.yaml", "--set", "train.epoch=3"): "did you mean 'epochs'",
        ("train", "cfg.yaml", "--set", "train.epochs=zero"): "train.epochs",
        ("train", "missing.yaml"): "config file not found",
        ("train", "cfg.yaml", "--set", "data.source=nope.csv"): "nope.csv",
        ("train", "cfg.yaml", "--set", "inputs.0.name=sise"): "sise",
        ("evaluate", "no-such-run"): "run directory not found",
        ("init", str(table_csv), "--target", "lable"): "did you mean 'label'",
    }
    for args, expected in cases.items():
        result = cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert expected in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr, args
    debug = cli("--debug", "train", "missing.yaml")
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_existing_output_dir_is_refused_then_resumed(cli: Cli, tmp_path: Path) -> None:
    args = ("train", REPO / "examples" / "digits.yaml", "--output-dir", "run")
    _ok(cli(*args, "--set", "train.epochs=1", "--set", "train.early_stop=null"))
    again = cli(*args, "--set", "train.epochs=1")
    assert again.returncode == 2 and "already exists" in again.stderr
    _ok(cli("train", "--resume", "run", "--set", "train.epochs=2"))
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in lines if "val/loss" in x] == [1, 2]


def test_datasets_and_schema(cli: Cli) -> None:
    assert "builtin:digits" in _ok(cli("datasets")).stdout
    schema = json.loads(_ok(cli("schema")).stdout)
    assert "train" in schema["properties"]
