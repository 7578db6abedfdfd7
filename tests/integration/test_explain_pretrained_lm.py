"""Explain on a pretrained (Hugging Face) causal language model: the word that decides the next
word gets the top attribution, the trust figures are computed, the attention maps are the
model's own and leave its outputs unchanged, and the CLI writes the files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import run_cli
from pretrained_models import save_tiny_gpt2

import megalith as mg
from megalith.explain.causal_lm import PretrainedNextToken

pytestmark = pytest.mark.slow  # trains a tiny GPT-2

KEYS = {"alpha": "red", "beta": "green", "gamma": "blue"}
"""The word that decides the next one: a line's last word follows from the word before it."""
FILLER = ["the", "a", "cat", "dog", "sat", "ran", "on", "under", "big", "small", "house", "car"]


def _lines(count: int, seed: int) -> list[str]:
    """Three filler words, a key, then the key's colour: only the key decides the colour."""
    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(count):
        key = str(rng.choice(sorted(KEYS)))
        lines.append(" ".join([*rng.choice(FILLER, 3), key, KEYS[key]]))
    return lines


def _prompts(count: int) -> list[str]:
    """Filler words then a key, the colour left for the model to predict."""
    rng = np.random.default_rng(99)
    return [" ".join([*rng.choice(FILLER, 3), sorted(KEYS)[i % 3]]) for i in range(count)]


def _train(folder: Path, lora: dict[str, int] | None, epochs: int) -> mg.Run:
    text = _lines(1500, seed=0)
    corpus = folder / "corpus"
    corpus.mkdir(exist_ok=True)
    for i in range(10):
        (corpus / f"part{i}.txt").write_text("\n".join(text[i::10]) + "\n", encoding="utf-8")
    if not (folder / "gpt2").is_dir():
        save_tiny_gpt2(folder / "gpt2", text)
    config = {
        "data": {"source": str(corpus), "format": "text"},
        "outputs": [{"name": "text", "type": "text"}],
        "model": {"arch": "pretrained", "path": str(folder / "gpt2"), "context": 32, "lora": lora},
        "train": {"epochs": epochs, "batch_size": 8, "optimizer": {"lr": 3e-3}, "baselines": False},
    }
    return mg.train(config, output_dir=folder / ("lora" if lora else "run"))


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory: pytest.TempPathFactory) -> mg.Run:
    return _train(tmp_path_factory.mktemp("gpt2-lm"), None, epochs=3)


def test_the_deciding_word_gets_the_top_value(lm_run: mg.Run) -> None:
    prompts = _prompts(12)
    explanations = lm_run.explain(pd.DataFrame({"text": prompts}))
    hits = 0
    for prompt, row in zip(prompts, explanations.rows, strict=True):
        key = prompt.split()[-1]
        words = row["word_attributions"]  # [[word, value], ...], the pieces merged
        assert [w for w, _ in words] == prompt.split()
        top = max(words, key=lambda pair: pair[1])[0]
        hits += top == key and row["explained"]["next_token"].strip() == KEYS[key]
        # the token values sum to f(x) - f(baseline) within 5%, or the steps were raised
        assert row["integrated_gradients"]["completeness_gap"] <= 0.05 or (
            row["integrated_gradients"]["steps"] == 400
        )
        tokens = [t for t, _ in row["token_attributions"]]
        assert tokens == row["tokens"] and len(row["predicted_next"]) == len(tokens)
    assert hits >= 10, hits  # the key tops, and the model predicts its colour
    trust = explanations.summary["trust"]
    assert trust["completeness"]["passed"] and trust["deletion"]["passed"]
    assert trust["deletion"]["rows_better_than_random"] >= 0.9
    assert trust["randomisation"]["rows"] == 12


def test_attention_maps_are_the_model_s_own_and_leave_its_outputs_unchanged(
    lm_run: mg.Run,
) -> None:
    model = lm_run.model
    prompt = _prompts(1)[0]
    ids = lm_run.preprocessor.outputs[0].encode([prompt])[0]  # type: ignore[attr-defined]
    tokens = torch.tensor([ids])
    with torch.no_grad():
        before = model({"text": tokens})["text"]  # (1, T, V + 1)
    explanations = lm_run.explain(pd.DataFrame({"text": [prompt]}))
    with torch.no_grad():
        after = model({"text": tokens})["text"]
    torch.testing.assert_close(before, after)  # back on the default attention afterwards
    (found,) = explanations.attention
    count = len(ids)
    assert found.weights.shape == (2, 2, count, count)  # layers, heads, queries, keys
    assert np.allclose(found.weights.sum(axis=-1), 1, atol=1e-4)
    assert not np.triu(found.weights, 1).any()  # causal: no token looks ahead
    # the attributed function is the model's own: from the embeddings, its last logits
    forward = PretrainedNextToken(model).eval()  # type: ignore[arg-type]
    with torch.no_grad():
        torch.testing.assert_close(forward(forward.embed(ids)), before[:, -1], atol=1e-4, rtol=0)
    predicted = before[0].argmax(-1)
    row = explanations.rows[0]
    assert row["predicted_next"][-1] == lm_run.preprocessor.outputs[0].tokenizer.decode(  # type: ignore[attr-defined]
        [int(predicted[-1])]
    )


def test_the_cli_explains_a_pretrained_language_model(
    lm_run: mg.Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    result = run_cli("explain", lm_run.path, "--output", "out")
    assert result.code == 0, result.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["rows"] == 1 and set(summary["trust"]) == {
        "completeness",
        "deletion",
        "randomisation",
    }
    rows = (tmp_path / "out" / "explanations.jsonl").read_text().splitlines()
    row = json.loads(rows[0])
    assert len(row["tokens"]) == 32  # the test document's first tokens, the model's context
    assert (tmp_path / "out" / "attention.jsonl").is_file()
    page = (tmp_path / "out" / "explain.html").read_text()
    assert "Attention</h2>" in page and "Explaining the next token" in page
    refused = run_cli("explain", lm_run.path, "--target", "red", "--output", "out", "--overwrite")
    assert refused.code == 2 and refused.stderr.strip() == (
        "error: --target: a pretrained language model has no output columns or classes to "
        "choose; explain shows which tokens led to each predicted token"
    )


def test_a_lora_language_model_is_explained(lm_run: mg.Run) -> None:
    run = _train(lm_run.path.parent, {"rank": 4, "alpha": 8}, epochs=1)
    explanations = run.explain(pd.DataFrame({"text": _prompts(2)}))
    assert len(explanations.rows) == 2 and len(explanations.attention) == 2
    trust = explanations.summary["trust"]
    assert trust["completeness"]["passed"] and trust["randomisation"]["rows"] == 2
