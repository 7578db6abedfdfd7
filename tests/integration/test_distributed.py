"""DDP over Gloo on the CPU follows the single-process run; accumulation equals a big batch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
import yaml
from safetensors.torch import load_file

from megalith.config import validate_config
from megalith.data.specs import InputSpec, OutputSpec
from megalith.data.tensors import TensorTable
from megalith.models import build_model
from megalith.training.loop import TrainJob, train_loop

CONFIG = {
    "name": "ddp",
    "data": {"source": "builtin:digits_table"},
    "inputs": [{"name": f"px{i}", "type": "number"} for i in (10, 20, 21, 26, 30, 36, 42, 43)],
    "outputs": [{"name": "label", "type": "category"}],
    "model": {"arch": "mlp", "hidden": [32], "dropout": 0.0},
    "train": {"epochs": 3, "batch_size": 64, "schedule": {"name": "cosine"}},
}


def _train(tmp_path: Path, name: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "megalith", "train", "cfg.yaml", "-o", name, *extra],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_two_processes_match_one(tmp_path: Path) -> None:
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(CONFIG))
    single = _train(tmp_path, "single")
    assert single.returncode == 0, single.stderr
    double = _train(tmp_path, "double", "--devices", "2")
    assert double.returncode == 0, double.stderr

    a = load_file(tmp_path / "single" / "model.safetensors")
    b = load_file(tmp_path / "double" / "model.safetensors")
    for key in a:  # the same global batches; only the reduction order differs
        torch.testing.assert_close(a[key], b[key], atol=2e-3, rtol=0)
    scores = [json.loads((tmp_path / n / "eval.json").read_text()) for n in ("single", "double")]
    assert abs(scores[0]["test"]["loss"] - scores[1]["test"]["loss"]) < 1e-2
    assert scores[1]["training"]["processes"] == 2
    epochs = [
        json.loads(line)["epoch"]
        for line in (tmp_path / "double" / "metrics.jsonl").read_text().splitlines()
        if "val/loss" in line
    ]
    assert epochs == [1, 2, 3]  # only rank 0 writes


def _job(batch_size: int, accumulation: int, folder: Path) -> TrainJob:
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(1280, 4)).astype(np.float32))
    y = (x.sum(dim=1) > 0).long()
    table = TensorTable(
        inputs={f"x{i}": x[:, i] for i in range(4)}, targets={"y": y}, rows=np.arange(1280)
    )
    inputs = [InputSpec(f"x{i}", "number") for i in range(4)]
    outputs = [OutputSpec("y", "category", num_classes=2)]
    config = validate_config(
        {
            "data": {"source": "unused.csv"},
            "inputs": [{"name": f"x{i}", "type": "number"} for i in range(4)],
            "outputs": [{"name": "y", "type": "category"}],
            "model": {"arch": "mlp", "hidden": [16], "dropout": 0.0},
            "train": {"epochs": 2, "batch_size": batch_size, "grad_accumulation": accumulation},
        }
    )
    torch.manual_seed(0)
    model = build_model(config.model, inputs, outputs)
    return TrainJob(model, config.outputs, outputs, table, None, config.train, 0, folder)


def test_gradient_accumulation_equals_a_larger_batch(tmp_path: Path) -> None:
    big = _job(64, 1, tmp_path / "a")
    accumulated = _job(32, 2, tmp_path / "b")
    train_loop(big)
    train_loop(accumulated)
    for p, q in zip(big.model.parameters(), accumulated.model.parameters(), strict=True):
        torch.testing.assert_close(p, q, atol=1e-5, rtol=1e-4)


def test_fsdp_on_two_processes_matches_one_and_resumes_exactly(tmp_path: Path) -> None:
    config = {**CONFIG, "train": {**CONFIG["train"], "strategy": "fsdp"}}
    config["train"]["schedule"] = {"name": "constant"}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(config))
    single = _train(tmp_path, "single")  # one process: strategy has nothing to shard
    assert single.returncode == 0, single.stderr
    sharded = _train(tmp_path, "sharded", "--devices", "2")
    assert sharded.returncode == 0, sharded.stderr
    a = load_file(tmp_path / "single" / "model.safetensors")
    b = load_file(tmp_path / "sharded" / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:  # whole tensors in the file, as one process writes them
        assert a[key].shape == b[key].shape
        torch.testing.assert_close(a[key], b[key], atol=2e-3, rtol=0)

    # two epochs, then resumed for the third: the same weights as three epochs in one go
    first = _train(tmp_path, "resumed", "--devices", "2", "--set", "train.epochs=2")
    assert first.returncode == 0, first.stderr
    command = ["train", "--resume", "resumed", "--devices", "2", "--set", "train.epochs=3"]
    resumed = subprocess.run(
        [sys.executable, "-m", "megalith", *command],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    c = load_file(tmp_path / "resumed" / "model.safetensors")
    for key in b:
        assert torch.equal(b[key], c[key]), key


def _text_job(batch_size: int, accumulation: int, folder: Path) -> TrainJob:
    """A small GPT on rows whose targets end after 2..16 tokens: padding falls unevenly."""
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randint(4, 40, (128, 17), generator=gen)
    lengths = torch.randint(2, 17, (128, 1), generator=gen)
    targets = tokens[:, 1:].masked_fill(torch.arange(16) >= lengths, 0)  # 0 = padding
    table = TensorTable({"text": tokens[:, :-1]}, {"text": targets}, np.arange(128))
    config = validate_config(
        {
            "data": {"source": "unused", "format": "text"},
            "outputs": [{"name": "text", "type": "text"}],
            "model": {"arch": "gpt", "context": 16, "layers": 1, "heads": 2, "dim": 16}
            | {"dropout": 0},
            "train": {"epochs": 2, "batch_size": batch_size, "grad_accumulation": accumulation},
        }
    )
    torch.manual_seed(0)
    model = build_model(config.model, [], [OutputSpec("text", "text", num_classes=40)])
    return TrainJob(model, config.outputs, [], table, None, config.train, 0, folder)


def test_accumulated_text_batches_weigh_every_token_alike(tmp_path: Path) -> None:
    """Each accumulated batch has its own number of real tokens: the step still averages over
    every token of the step, as one big batch does (not over batch means)."""
    big = _text_job(32, 1, tmp_path / "a")
    accumulated = _text_job(8, 4, tmp_path / "b")
    train_loop(big)
    train_loop(accumulated)
    for p, q in zip(big.model.parameters(), accumulated.model.parameters(), strict=True):
        torch.testing.assert_close(p, q, atol=1e-5, rtol=1e-4)


def test_a_language_model_on_two_processes_matches_one(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(8):  # documents of different lengths: the last window of each split is short
        (corpus / f"part{i}.txt").write_text("the cat eats fish.\nthe dog eats meat.\n" * (9 + i))
    config = {
        "name": "lm",
        "data": {"source": "corpus", "format": "text", "split": {"val": 0.2, "test": 0.2}},
        "outputs": [{"name": "text", "type": "text", "tokenizer": "char", "vocab_size": 64}],
        "model": {"arch": "gpt", "context": 32, "layers": 2, "heads": 2, "dim": 32, "dropout": 0},
        "train": {"epochs": 3, "batch_size": 16, "optimizer": {"lr": 0.01}},
    }
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(config))
    for name, extra in (("single", ()), ("double", ("--devices", "2"))):
        result = _train(tmp_path, name, *extra)
        assert result.returncode == 0, result.stderr
    a = load_file(tmp_path / "single" / "model.safetensors")
    b = load_file(tmp_path / "double" / "model.safetensors")
    for key in a:  # averaging per-process token means instead, they differ by 6e-3
        torch.testing.assert_close(a[key], b[key], atol=2e-3, rtol=0)


def test_fsdp_in_bf16_gathers_half_precision_and_saves_fp32(tmp_path: Path) -> None:
    config = {**CONFIG, "train": {**CONFIG["train"], "strategy": "fsdp", "precision": "bf16"}}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(config))
    for name, extra in (("single", ()), ("sharded", ("--devices", "2"))):
        result = _train(tmp_path, name, *extra)
        assert result.returncode == 0, result.stderr
    weights = load_file(tmp_path / "sharded" / "model.safetensors")
    assert all(t.dtype == torch.float32 for t in weights.values())  # fp32 master weights
    scores = [json.loads((tmp_path / n / "eval.json").read_text()) for n in ("single", "sharded")]
    assert abs(scores[0]["test"]["loss"] - scores[1]["test"]["loss"]) < 0.05
    epochs = [
        json.loads(line)
        for line in (tmp_path / "sharded" / "metrics.jsonl").read_text().splitlines()
        if "val/loss" in line
    ]
    assert epochs[-1]["train/loss"] < epochs[0]["train/loss"]
