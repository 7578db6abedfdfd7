"""Explain on a pretrained (Hugging Face) classifier: the topic words get the top attributions,
the trust figures are computed, and the attention maps are the model's own."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import run_cli
from pretrained_models import TOPICS, save_tiny_bert, topic_table

import megalith as mg
from megalith.explain.pretrained import pretrained_spaces

pytestmark = pytest.mark.slow  # trains a tiny BERT


@pytest.fixture(scope="module")
def bert_run(tmp_path_factory: pytest.TempPathFactory) -> mg.Run:
    folder = tmp_path_factory.mktemp("bert")
    table = topic_table(240)
    table.to_csv(folder / "topics.csv", index=False)
    save_tiny_bert(folder / "bert", table.text)
    config = {
        "data": {"source": str(folder / "topics.csv"), "split": {"val": 0.1, "test": 0.2}},
        "inputs": [{"name": "text", "type": "text"}],
        "outputs": [{"name": "topic", "type": "category"}],
        "model": {"arch": "pretrained", "path": str(folder / "bert")},
        "train": {"epochs": 8, "batch_size": 16, "optimizer": {"lr": 1e-3}, "baselines": False},
    }
    return mg.train(config, output_dir=folder / "run")


def test_the_topic_words_get_the_top_values(bert_run: mg.Run) -> None:
    explanations = bert_run.explain(rows=20)
    keywords = {word for words in TOPICS.values() for word in words}
    hits = 0
    for row in explanations.rows:
        words = row["text"]["text"]  # [[word, value], ...], [CLS] and [SEP] included
        top = max((pair for pair in words if pair[0] not in ("[CLS]", "[SEP]")), key=lambda p: p[1])
        hits += top[0] in keywords
        # the values of a row sum to f(x) - f(baseline) (completeness)
        assert row["integrated_gradients"]["completeness_gap"] <= 0.05 or (
            row["integrated_gradients"]["steps"] == 400
        )
    assert hits >= 16, hits  # a topic word tops at least 4 rows in 5
    trust = explanations.summary["trust"]
    assert trust["completeness"]["rows_within_goal"] >= 0.9
    assert trust["deletion"]["passed"] and "randomisation" in trust


def test_attention_maps_are_the_model_s_own_and_leave_its_outputs_unchanged(
    bert_run: mg.Run,
) -> None:
    _, splits = bert_run.data_splits()
    frame = splits["test"].iloc[:3]
    encoded = bert_run.preprocessor.encode_inputs(frame, base_dir=None, origin="test")
    ids = torch.as_tensor(encoded["text"])
    with torch.no_grad():
        before = bert_run.model({"text": ids})["topic"]
    explanations = bert_run.explain(frame, rows=3, method="saliency")
    with torch.no_grad():
        after = bert_run.model({"text": ids})["topic"]
    torch.testing.assert_close(before, after)  # back on the default attention afterwards
    assert len(explanations.attention) == 3
    for found, row in zip(explanations.attention, ids, strict=True):
        assert found.weights.shape == (2, 2, int((row != 0).sum()), int((row != 0).sum()))
        assert np.allclose(found.weights.sum(axis=-1), 1, atol=1e-4)  # real tokens only
        assert found.tokens[0] == "[CLS]" and found.tokens[-1] == "[SEP]"
    # the attributed embeddings are the model's own: the forward from them gives its logits
    spaces = pretrained_spaces(bert_run.model, bert_run.preprocessor.input_specs, encoded)  # type: ignore[arg-type]
    from megalith.explain.pretrained import PretrainedForward

    forward = PretrainedForward(bert_run.model, bert_run.preprocessor.output_specs[0])  # type: ignore[arg-type]
    with torch.no_grad():
        torch.testing.assert_close(forward(spaces[0].values, ids), before, atol=1e-5, rtol=1e-5)


def test_the_cli_explains_a_pretrained_run(
    bert_run: mg.Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    result = run_cli("explain", bert_run.path, "--rows", "4", "--output", "out")
    assert result.code == 0, result.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["rows"] == 4 and set(summary["trust"]) >= {"completeness", "deletion"}
    assert (tmp_path / "out" / "attention.jsonl").is_file()
    assert "attention" in (tmp_path / "out" / "explain.html").read_text().lower()
