"""`megalith explain` on a seq2seq run: a model trained to copy its source attributes each written
token to the source token it copied; the trust figures pass; the files, the page (in headless
Chromium) and the CLI carry the (written token x source word) attributions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from chromium import CHROMIUM, load_page
from conftest import run_cli

import megalith as mg
from megalith.explain import write_explanations

pytestmark = pytest.mark.slow  # the fixture trains a small seq2seq model

LETTERS = list("abcdefgh")


@pytest.fixture(scope="module")
def copy_run(tmp_path_factory: pytest.TempPathFactory) -> mg.Run:
    """A seq2seq model that learned to copy 3-5 letters (written as words). Letters repeat
    within a word, so the model must copy by position: with distinct letters it can also find
    the letter it wrote last in the source and copy the one after it, and then that previous
    letter rightly gets much of the attribution (on up to 1 copied token in 6, measured)."""
    folder = tmp_path_factory.mktemp("copy")
    rng = np.random.default_rng(0)
    words = ["".join(rng.choice(LETTERS, size=rng.integers(3, 6))) for _ in range(800)]
    pairs = pd.DataFrame({"word": words, "copied": [" ".join(w) for w in words]})
    pairs.to_csv(folder / "pairs.csv", index=False)
    config = {
        "data": {"source": str(folder / "pairs.csv"), "split": {"val": 0.1, "test": 0.1}},
        "inputs": [{"name": "word", "type": "text", "tokenizer": "char"}],
        "outputs": [{"name": "copied", "type": "text", "tokenizer": "word", "vocab_size": 12}],
        "model": {"arch": "seq2seq", "layers": 1, "heads": 2, "dim": 32, "dropout": 0.0,
                  "beam_size": 1},
        "train": {"epochs": 30, "batch_size": 32, "baselines": False,
                  "optimizer": {"name": "adamw", "lr": 0.01}},
    }  # fmt: skip
    run = mg.train(config, output_dir=folder / "run")
    assert json.loads((folder / "run" / "eval.json").read_text())["test"]["exact_match"] > 0.9
    return run


def test_each_copied_token_is_attributed_to_the_source_token_it_copies(copy_run: mg.Run) -> None:
    explanations = copy_run.explain(rows=12)
    test_rows = copy_run.data_splits()[1]["test"]
    hits = total = 0
    for row in explanations.rows:
        word = test_rows.loc[row["row"], "word"]
        assert row["source_words"] == list(word) and row["output_tokens"][-1] == "[EOS]"
        matrix = np.array(row["source_attributions"])
        assert matrix.shape == (len(row["output_tokens"]), len(word))
        for t, token in enumerate(row["output_tokens"][:-1]):
            if t < len(word) and token == word[t]:  # a token it copied from position t
                total += 1
                hits += int(np.argmax(matrix[t]) == t)
    assert total >= 30 and hits / total >= 0.85, (hits, total)  # 48 of 48 in a scratch run
    trust = explanations.summary["trust"]
    assert trust["completeness"]["passed"] and trust["completeness"]["gap_max"] <= 0.05
    assert trust["deletion"]["passed"] and trust["deletion"]["rows"] == 12
    assert trust["deletion"]["area_attributed"] > trust["deletion"]["area_random"]
    assert trust["randomisation"]["rows"] == 12
    assert explanations.summary["method"] == "ig"


EXPLAIN_FACTS = """({
  heat: document.querySelectorAll("table.heat").length,
  cells: [...document.querySelectorAll("table.heat")].map(t => t.querySelectorAll("td").length),
  images: document.images.length,
  broken: [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).length,
})"""


def test_the_cli_writes_the_attribution_matrix_and_a_page_that_renders(
    copy_run: mg.Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    done = run_cli("explain", copy_run.path, "--rows", "3", "--output", "explained")
    assert done.code == 0, done.stderr
    assert "completeness passed" in done.stderr and "deletion passed" in done.stderr
    rows = [
        json.loads(line) for line in Path("explained/explanations.jsonl").read_text().splitlines()
    ]
    assert len(rows) == 3
    for row in rows:
        assert len(row["source_attributions"]) == len(row["output_tokens"])
        assert len(row["integrated_gradients"]["steps"]) == len(row["output_tokens"])
    page = Path("explained/explain.html")
    assert page.read_text().count("class='heat'") == 3
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")
    loaded = load_page(page, EXPLAIN_FACTS)
    assert loaded.failed == [] and loaded.errors == []
    facts = loaded.facts
    expected = [len(r["output_tokens"]) * len(r["source_words"]) for r in rows]
    assert facts["heat"] == 3 and facts["cells"] == expected
    assert facts["images"] == 6 and facts["broken"] == 0  # each row's encoder and cross maps


def test_write_explanations_keeps_the_matrix_in_python_and_on_disk(
    copy_run: mg.Run, tmp_path: Path
) -> None:
    explanations = copy_run.explain(rows=2, steps=20, internal_batch_size=7)
    folder = write_explanations(explanations, tmp_path / "out")
    written = [json.loads(line) for line in (folder / "explanations.jsonl").read_text().split("\n")
               if line]  # fmt: skip
    assert [r["source_attributions"] for r in written] == [
        r["source_attributions"] for r in explanations.rows
    ]
    assert explanations.summary["steps"] == 20
    assert explanations.summary["internal_batch_size"] == 7  # above any row's written tokens
    assert json.loads((folder / "summary.json").read_text())["internal_batch_size"] == 7
