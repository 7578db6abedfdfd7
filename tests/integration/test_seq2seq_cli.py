"""Seq2seq end to end from the CLI: train on a generated task, BLEU in eval.json, predict."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from conftest import CliResult

Cli = Callable[..., CliResult]


def reversal_table(rows: int, seed: int) -> pd.DataFrame:
    """'abcd' -> 'd c b a': letters in, the same letters reversed and spaced out."""
    rng = np.random.default_rng(seed)
    words = ["".join(rng.choice(list("abcdefgh"), size=rng.integers(2, 6))) for _ in range(rows)]
    return pd.DataFrame({"word": words, "reversed": [" ".join(reversed(w)) for w in words]})


def test_train_evaluate_predict_a_generated_task(cli: Cli, tmp_path: Path) -> None:
    reversal_table(800, seed=0).to_csv(tmp_path / "pairs.csv", index=False)
    config = {
        "name": "reverse",
        "data": {"source": "pairs.csv", "split": {"val": 0.1, "test": 0.1}},
        "inputs": [{"name": "word", "type": "text", "tokenizer": "char"}],
        "outputs": [{"name": "reversed", "type": "text", "tokenizer": "word", "vocab_size": 16}],
        "model": {"arch": "seq2seq", "layers": 2, "heads": 2, "dim": 32, "beam_size": 2},
        "train": {"epochs": 25, "batch_size": 32, "optimizer": {"name": "adamw", "lr": 0.005}},
    }
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(config))
    result = cli("train", "cfg.yaml", "--output-dir", "run")
    assert result.returncode == 0, result.stderr[-3000:]
    test = json.loads((tmp_path / "run" / "eval.json").read_text())["test"]
    assert set(test) >= {"loss", "perplexity", "token_accuracy", "exact_match", "bleu"}
    assert test["exact_match"] > 0.8 and test["bleu"] > 80
    assert "Generated samples" in (tmp_path / "run" / "report.html").read_text()

    new = reversal_table(30, seed=1)
    new[["word"]].to_csv(tmp_path / "new.csv", index=False)
    predicted = cli("predict", "run", "--data", "new.csv", "--output", "out.csv")
    assert predicted.returncode == 0, predicted.stderr
    out = pd.read_csv(tmp_path / "out.csv")
    assert list(out.columns) == ["word", "reversed"]
    assert (out["reversed"] == new["reversed"]).mean() > 0.8
