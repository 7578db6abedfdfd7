"""Language models end to end: a corpus folder -> gpt -> perplexity -> generate, from the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from conftest import CliResult

import megalith as mg
from megalith.errors import RunError

Cli = Callable[..., CliResult]

# a tiny corpus with a pattern a small model learns in seconds
LINES = [f"the {animal} eats {food}.\n" for animal, food in [("cat", "fish"), ("dog", "meat")]]


def write_corpus(folder: Path, files: int = 12) -> None:
    folder.mkdir()
    for i in range(files):
        (folder / f"part{i:02d}.txt").write_text("".join(LINES * (20 + i)), encoding="utf-8")


def gpt_config(tmp_path: Path, **train: object) -> Path:
    config = {
        "name": "tiny-gpt",
        "data": {"source": "corpus", "format": "text", "split": {"val": 0.2, "test": 0.2}},
        "outputs": [{"name": "text", "type": "text", "tokenizer": "char", "vocab_size": 64}],
        "model": {"arch": "gpt", "context": 32, "layers": 2, "heads": 2, "dim": 32},
        "train": {
            "epochs": 4,
            "batch_size": 16,
            "optimizer": {"name": "adamw", "lr": 0.01},
            **train,
        },
    }
    path = tmp_path / "gpt.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_train_evaluate_generate_from_the_cli(cli: Cli, tmp_path: Path) -> None:
    write_corpus(tmp_path / "corpus")
    gpt_config(tmp_path, epochs=10)
    result = cli("train", "gpt.yaml", "--output-dir", "run")
    assert result.returncode == 0, result.stderr[-3000:]
    scores = json.loads((tmp_path / "run" / "eval.json").read_text())
    # 'the cat eats fish.' repeated: far better than guessing among ~20 characters
    assert scores["test"]["perplexity"] < 3.0
    assert scores["test"]["token_accuracy"] > 0.6
    report = (tmp_path / "run" / "report.html").read_text()
    assert "Generated samples" in report

    generated = cli("generate", "run", "--prompt", "the dog", "-n", "30", "--temperature", "0")
    assert generated.returncode == 0, generated.stderr
    assert generated.stdout.startswith("the dog eats meat.")

    evaluated = cli("evaluate", "run", "--data", "corpus/part00.txt")
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["perplexity"] < 3.0


def test_python_api_generate_streams_pieces_and_follows_the_seed(tmp_path: Path) -> None:
    write_corpus(tmp_path / "corpus")
    config = gpt_config(tmp_path, epochs=2)
    run = mg.train(config, output_dir=tmp_path / "run")
    loaded = mg.load(tmp_path / "run")
    pieces = list(loaded.generate("the ", max_new_tokens=12, seed=3))
    assert 1 <= len(pieces) <= 12 and all(isinstance(p, str) for p in pieces)
    assert pieces == list(run.generate("the ", max_new_tokens=12, seed=3))
    with pytest.raises(RunError, match="language model"):
        loaded.predict(tmp_path / "corpus" / "part00.txt")


def test_generate_on_a_classifier_is_a_clear_error(cli: Cli, tmp_path: Path) -> None:
    config = {
        "data": {"source": "builtin:iris"},
        "inputs": [{"name": "petal_length", "type": "number"}],
        "outputs": [{"name": "species", "type": "category"}],
        "train": {"epochs": 1},
    }
    (tmp_path / "iris.yaml").write_text(yaml.safe_dump(config))
    assert cli("train", "iris.yaml", "--output-dir", "run").returncode == 0
    result = cli("generate", "run", "--prompt", "hello")
    assert result.returncode == 2
    assert "not a language model" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_max_steps_stops_inside_the_first_epoch(tmp_path: Path) -> None:
    write_corpus(tmp_path / "corpus")
    run = mg.train(gpt_config(tmp_path, max_steps=3), output_dir=tmp_path / "run")
    assert run.metrics["training"]["steps"] == 3
    assert run.metrics["training"]["epochs"] == 1


def test_a_corpus_folder_without_text_files_is_a_clear_error(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "data.bin").write_bytes(b"\x00\x01")
    gpt_config(tmp_path)
    result = cli("train", "gpt.yaml", "--output-dir", "run")
    assert result.returncode == 2
    assert "no text files" in result.stderr and "Traceback" not in result.stderr


def test_init_writes_a_language_model_for_a_corpus(cli: Cli, tmp_path: Path) -> None:
    write_corpus(tmp_path / "corpus")
    result = cli("init", "corpus", "--output", "lm.yaml")
    assert result.returncode == 0, result.stderr[-3000:]
    config = yaml.safe_load((tmp_path / "lm.yaml").read_text())
    assert config["model"]["arch"] == "gpt" and config["data"]["format"] == "text"
    (output,) = config["outputs"]
    assert output == {"name": "text", "type": "text", "tokenizer": "bpe", "vocab_size": 2048}
    # a short run of the written config: it trains and generates
    result = cli(
        "train", "lm.yaml", "-o", "run", "--set", "train.max_steps=15", "--set", "model.context=32"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    scores = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert scores["test"]["perplexity"] < 60  # 2,048 byte-level ids; the corpus repeats 2 lines
    result = cli("generate", "run", "--prompt", "the ", "-n", "10")
    assert result.returncode == 0 and result.stdout.startswith("the ")

    result = cli("init", "corpus", "--target", "label")
    assert result.returncode != 0 and "leave out --target" in result.stderr
    (tmp_path / "table.csv").write_text("a,b\n1,2\n")
    result = cli("init", "table.csv")
    assert result.returncode != 0 and "give --target" in result.stderr
    assert "Traceback" not in result.stderr
