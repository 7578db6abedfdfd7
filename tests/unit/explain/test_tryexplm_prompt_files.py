"""A language model explained on a prompt folder names each row's file (in explanations.jsonl
and explain.html): the folder's empty files are left out and the rest numbered 0, 1, ...,
so the row number alone did not say which prompt it was. A prompt longer than the tokens read
says how many were cut off (the token explained follows the last one read)."""

from __future__ import annotations

from pathlib import Path

import pytest

import megalith as mg
from megalith.explain import write_explanations

pytestmark = pytest.mark.filterwarnings("ignore")


def test_each_prompt_row_names_its_file(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(10):
        (corpus / f"{i}.txt").write_text("the cat sat on the mat\n" * 20, encoding="utf-8")
    config = {
        "data": {"source": str(corpus), "format": "text", "split": {"val": 0.2, "test": 0.2}},
        "outputs": [{"name": "text", "type": "text", "tokenizer": "char"}],
        "model": {"arch": "gpt", "context": 16, "layers": 1, "heads": 1, "dim": 8},
        "train": {"epochs": 1, "max_steps": 2, "batch_size": 4, "baselines": False},
    }
    run = mg.train(config, output_dir=tmp_path / "run")
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "a.txt").write_text("the cat", encoding="utf-8")
    (prompts / "b.txt").write_text("", encoding="utf-8")  # left out
    (prompts / "c.txt").write_text("on the", encoding="utf-8")
    (prompts / "d.txt").write_text("the cat sat on the mat the cat", encoding="utf-8")  # 30 chars
    explanations = run.explain(prompts)
    found = [(r["row"], r["file"]) for r in explanations.rows]
    assert found == [(0, "a.txt"), (1, "c.txt"), (2, "d.txt")]
    assert "tokens_cut" not in explanations.rows[0]
    assert len(explanations.rows[2]["tokens"]) == 16 and explanations.rows[2]["tokens_cut"] == 14
    page = (write_explanations(explanations, tmp_path / "out") / "explain.html").read_text()
    assert "Row 1 (c.txt)" in page
    assert "The model read the first 16 tokens; the 14 after them were cut off" in page
