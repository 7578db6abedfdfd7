"""`megalith init DATA --private`: a private config that validates and trains with DP-SGD."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import make_table, run_cli

from megalith.config import Config
from megalith.data.infer import Inference
from megalith.data.infer_private import expected_train_rows, private_batch_size, with_privacy
from megalith.errors import DataError


def _text_table(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    topics = {"net": "socket request header url", "disk": "file path folder read"}
    labels = rng.choice(list(topics), rows)
    texts = [" ".join(rng.choice(topics[label].split(), 4)) + " the data" for label in labels]
    return pd.DataFrame({"text": texts, "topic": labels})


@pytest.mark.slow
def test_init_private_writes_a_private_text_config_that_trains(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _text_table(300).to_csv("t.csv", index=False)
    init = run_cli("init", "t.csv", "-t", "topic", "--private", "--epsilon", "3", "-o", "c.yaml")
    assert init.code == 0, init.stderr
    written = (tmp_path / "c.yaml").read_text()
    config = yaml.safe_load(written)
    Config.model_validate(config)  # the written config validates as it is
    privacy = config["train"]["privacy"]
    assert privacy == {"epsilon": 3.0, "max_grad_norm": 1.0}
    text = config["inputs"][0]
    assert (text["tokenizer"], text["idf"], text["ngrams"], text["encoder"]) == (
        "hash",
        True,
        1,
        "bag",
    )
    assert config["train"]["batch_size"] == 64  # 240 train rows: about a fifth, never all of them
    assert "early_stop" not in config["train"]
    assert "DP-SGD at epsilon 3" in written  # the notes say why, in the file's header
    trained = run_cli("train", "c.yaml", "-o", "run", "--set", "train.epochs=1")
    assert trained.code == 0, trained.stderr[-3000:]
    spent = json.loads((tmp_path / "run" / "eval.json").read_text())["privacy"]
    assert 0 < spent["epsilon"] <= 3.0  # one of the planned epochs spends part of the budget


def test_private_table_config_trains_without_text_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    make_table(rows=120).to_csv("t.csv", index=False)
    init = run_cli("init", "t.csv", "-t", "label", "--private", "-o", "c.yaml")
    assert init.code == 0, init.stderr
    config = yaml.safe_load((tmp_path / "c.yaml").read_text())
    assert config["train"]["privacy"] == {"epsilon": 8.0, "max_grad_norm": 5.0}
    Config.model_validate(config)


def test_batch_and_epochs_follow_the_train_rows() -> None:
    sizes = [private_batch_size(n) for n in (1, 16, 100, 1_280, 9_000, 20_000, 10**6)]
    assert sizes == [1, 4, 16, 256, 2048, 4096, 4096]
    frame = pd.DataFrame({"x": range(100), "split": ["train"] * 70 + ["test"] * 30})
    assert expected_train_rows(frame, {"column": "split"}) == 70
    assert expected_train_rows(frame, {"val": 0.1, "test": 0.2}) == 70
    config = {
        "inputs": [{"name": "text", "type": "text"}],
        "model": {"arch": "mlp", "hidden": []},
        "train": {"epochs": 30, "batch_size": 128, "early_stop": {"metric": "val/loss"}},
    }
    private = with_privacy(Inference(config, []), 1.0, 9_000).config["train"]
    assert (private["batch_size"], private["epochs"]) == (2048, 60)  # 5 steps an epoch: 300


def test_a_language_model_or_a_bad_epsilon_is_refused() -> None:
    lm = {"model": {"arch": "gpt"}, "inputs": [], "train": {}}
    with pytest.raises(DataError, match=r"a language model .* leave out --private"):
        with_privacy(Inference(lm, []), 3.0, 1000)
    table = {"model": {"arch": "mlp"}, "inputs": [], "train": {}}
    with pytest.raises(DataError, match="--epsilon 0"):
        with_privacy(Inference(table, []), 0.0, 1000)


def test_epsilon_without_private_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "topics.csv"
    _text_table(40).to_csv(data, index=False)
    result = run_cli("init", str(data), "--target", "topic", "--epsilon", "3")
    assert result.code != 0
    assert "add --private" in result.stderr
    assert "Traceback" not in result.stderr
