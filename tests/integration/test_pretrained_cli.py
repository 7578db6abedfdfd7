"""Pretrained models end to end: a local model directory fine-tuned fully or with LoRA from the
CLI, predictions, resuming, `megalith merge` into a folder transformers loads on its own."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from conftest import CliResult
from pretrained_models import save_tiny_bert, save_tiny_gpt2, topic_table
from safetensors.torch import load_file

import megalith as mg

Cli = Callable[..., CliResult]


@pytest.fixture
def topics(tmp_path: Path) -> pd.DataFrame:
    table = topic_table(240)
    table.to_csv(tmp_path / "topics.csv", index=False)
    save_tiny_bert(tmp_path / "bert", table.text)
    return table


def classifier_config(tmp_path: Path, lora: dict[str, object] | None, **train: object) -> Path:
    config = {
        "name": "topics",
        "data": {"source": "topics.csv"},
        "inputs": [{"name": "text", "type": "text"}],
        "outputs": [{"name": "topic", "type": "category"}],
        "model": {"arch": "pretrained", "path": "bert", "lora": lora},
        "train": {"epochs": 10, "batch_size": 16, "optimizer": {"lr": 1e-3}, **train},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_full_fine_tune_predict_and_merge(cli: Cli, tmp_path: Path, topics: pd.DataFrame) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    classifier_config(tmp_path, lora=None)
    result = cli("train", "config.yaml", "--output-dir", "run")
    assert result.returncode == 0, result.stderr[-3000:]
    scores = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert scores["test"]["accuracy"] >= 0.9, scores["test"]
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["inputs"][0]["tokenizer"] == "pretrained"  # filled in from model.path
    assert saved["model"]["path"] == str(tmp_path / "bert")

    rows = tmp_path / "new.csv"
    topics.drop(columns="topic").head(20).to_csv(rows, index=False)
    result = cli("predict", "run", "--data", rows, "--output", "predictions.csv")
    assert result.returncode == 0, result.stderr[-3000:]
    predicted = pd.read_csv(tmp_path / "predictions.csv")
    assert (predicted["topic"] == topics["topic"].head(20)).mean() >= 0.9

    # the run needs nothing from the base model's folder any more
    (tmp_path / "bert").rename(tmp_path / "bert-moved")
    weights = (tmp_path / "run" / "model.safetensors").read_bytes()
    for inside in ("run", "run/pretrained"):  # never over the run's own files
        refused = cli("merge", "run", inside, "--overwrite")
        assert refused.returncode == 2 and "merge into a new folder" in refused.stderr
    assert (tmp_path / "run" / "model.safetensors").read_bytes() == weights
    result = cli("merge", "run", "merged")
    assert result.returncode == 0, result.stderr[-3000:]
    hf = AutoModelForSequenceClassification.from_pretrained(tmp_path / "merged").eval()
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "merged")
    assert hf.config.id2label == {0: "money", 1: "sport", 2: "weather"}
    texts = topics["text"].head(8).tolist()
    with torch.no_grad():
        logits = hf(**tokenizer(texts, return_tensors="pt", padding=True)).logits
    run = mg.load(tmp_path / "run")
    probabilities = run.predict(pd.DataFrame({"text": texts}))
    expected = probabilities[[f"topic_prob_{c}" for c in ("money", "sport", "weather")]]
    torch.testing.assert_close(
        logits.softmax(-1),
        torch.tensor(expected.to_numpy(), dtype=torch.float32),
        atol=1e-5,
        rtol=0,
    )


def test_lora_run_keeps_the_base_and_saves_an_adapter(
    cli: Cli, tmp_path: Path, topics: pd.DataFrame
) -> None:
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    classifier_config(tmp_path, lora={"rank": 4, "alpha": 8}, epochs=3, optimizer={"lr": 1e-2})
    result = cli("train", "config.yaml", "--output-dir", "run")
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = tmp_path / "run"
    weights = load_file(run_dir / "model.safetensors")
    assert weights and all("lora_" in k or "classifier" in k for k in weights), sorted(weights)
    adapter = json.loads((run_dir / "adapter" / "adapter_config.json").read_text())
    assert adapter["r"] == 4 and adapter["lora_alpha"] == 8
    assert (run_dir / "adapter" / "adapter_model.safetensors").is_file()

    # resume from the last checkpoint for two more epochs: the adapters' state is enough
    result = cli("train", "--resume", "run", "--set", "train.epochs=5")
    assert result.returncode == 0, result.stderr[-3000:]
    epochs = [
        json.loads(line)
        for line in (run_dir / "metrics.jsonl").read_text().splitlines()
        if '"val/loss"' in line
    ]
    assert [e["epoch"] for e in epochs][-2:] == [4, 5]
    assert epochs[-1]["train/loss"] < epochs[0]["train/loss"]

    # peft reads the adapter folder on top of the untouched base model: the run's outputs
    run = mg.load(run_dir)
    base = AutoModelForSequenceClassification.from_pretrained(
        tmp_path / "bert", num_labels=3, ignore_mismatched_sizes=True
    )
    with_adapter = PeftModel.from_pretrained(base, run_dir / "adapter").eval()
    ids = run.preprocessor.transform(
        topics.head(8), base_dir=tmp_path, origin="topics", with_targets=False
    ).inputs["text"]
    mask = ids != 0
    with torch.no_grad():
        theirs = with_adapter(input_ids=torch.where(mask, ids - 1, 0), attention_mask=mask).logits
        ours = run.model({"text": ids})["topic"]
    torch.testing.assert_close(ours, theirs)

    result = cli("merge", "run", "merged")
    assert result.returncode == 0, result.stderr[-3000:]
    merged = AutoModelForSequenceClassification.from_pretrained(tmp_path / "merged").eval()
    assert not any("lora" in name for name, _ in merged.named_parameters())
    with torch.no_grad():
        logits = merged(input_ids=torch.where(mask, ids - 1, 0), attention_mask=mask).logits
    torch.testing.assert_close(logits, ours, atol=1e-5, rtol=1e-4)

    # an adapter needs its base model: without it, a clear error
    (tmp_path / "bert").rename(tmp_path / "bert-moved")
    result = cli("predict", "run", "--data", "topics.csv", "--output", "p.csv")
    assert result.returncode != 0
    assert "holds a LoRA adapter for the base model" in result.stderr
    assert "Traceback" not in result.stderr


def test_pretrained_language_model_trains_and_generates(cli: Cli, tmp_path: Path) -> None:
    table = topic_table(600, seed=1)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(10):
        lines = table.text[i * 60 : (i + 1) * 60]
        (corpus / f"part{i}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    save_tiny_gpt2(tmp_path / "gpt2", table.text)
    config = {
        "name": "lm",
        "data": {"source": "corpus", "format": "text"},
        "outputs": [{"name": "text", "type": "text"}],
        "model": {"arch": "pretrained", "path": "gpt2", "context": 32},
        "train": {"epochs": 4, "batch_size": 16, "optimizer": {"lr": 3e-3}},
    }
    (tmp_path / "lm.yaml").write_text(yaml.safe_dump(config))
    result = cli("train", "lm.yaml", "--output-dir", "run")
    assert result.returncode == 0, result.stderr[-3000:]
    scores = json.loads((tmp_path / "run" / "eval.json").read_text())
    # 401 ids: an untrained model is near perplexity 400; the sentences are 7 common words
    assert scores["test"]["perplexity"] < 60, scores["test"]

    result = cli("generate", "run", "--prompt", "the", "-n", "30", "--seed", "0")
    assert result.returncode == 0, result.stderr[-3000:]
    words = result.stdout.split()
    assert words[0] == "the" and len(words) >= 3
    known = {w for text in table.text for w in text.split()}
    assert sum(w in known for w in words) >= len(words) // 2, words

    result = cli("merge", "run", "merged")
    assert result.returncode == 0, result.stderr[-3000:]
    from transformers import AutoModelForCausalLM

    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged").eval()
    run = mg.load(tmp_path / "run")
    tokens = torch.tensor([[5, 9, 30, 44]])
    with torch.no_grad():
        torch.testing.assert_close(
            run.model({"text": tokens})["text"][..., 1:], merged(input_ids=tokens - 1).logits
        )


def test_pretrained_config_mistakes_are_reported(
    cli: Cli, tmp_path: Path, topics: pd.DataFrame
) -> None:
    config = classifier_config(tmp_path, lora=None)
    data = yaml.safe_load(config.read_text())

    data["inputs"][0]["tokenizer"] = "word"
    config.write_text(yaml.safe_dump(data))
    result = cli("train", "config.yaml")
    assert result.returncode != 0
    assert "inputs.text.tokenizer" in result.stderr and "Traceback" not in result.stderr

    del data["inputs"][0]["tokenizer"]
    data["model"]["path"] = "no_such_model"
    config.write_text(yaml.safe_dump(data))
    result = cli("train", "config.yaml")
    assert result.returncode != 0
    assert "no_such_model is not a directory" in result.stderr
    assert "Traceback" not in result.stderr

    data["model"]["path"] = "bert"
    data["inputs"][0]["max_length"] = 100
    config.write_text(yaml.safe_dump(data))
    result = cli("train", "config.yaml")
    assert result.returncode != 0
    assert "reads at most 64" in result.stderr and "Traceback" not in result.stderr


def test_init_writes_a_fine_tune_of_a_pretrained_model(
    cli: Cli, tmp_path: Path, topics: pd.DataFrame
) -> None:
    table = topics.assign(length=topics["text"].str.len())  # a number column, left out
    table.to_csv(tmp_path / "more.csv", index=False)
    (tmp_path / "c").mkdir()
    result = cli("init", "more.csv", "--target", "topic", "--pretrained", "bert", "-o", "c/t.yaml")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "left out: length" in result.stderr
    config = yaml.safe_load((tmp_path / "c" / "t.yaml").read_text())
    assert config["model"] == {"arch": "pretrained", "path": "../bert", "lora": None}
    assert config["inputs"] == [{"name": "text", "type": "text"}]
    result = cli("train", "c/t.yaml", "-o", "run", "--set", "train.epochs=1")
    assert result.returncode == 0, result.stderr[-3000:]
