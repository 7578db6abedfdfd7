"""`megalith explain`: known-answer tests (only the deciding columns, patch or keyword get the
top attributions), the trust figures on trained models, and the CLI end to end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from chromium import CHROMIUM, load_page
from conftest import run_cli
from PIL import Image
from safetensors.numpy import load_file

import megalith as mg
from megalith.errors import RunError
from megalith.explain import write_explanations

pytestmark = pytest.mark.slow  # each module fixture trains a small model

FILLER = ["the", "a", "cat", "dog", "sat", "ran", "on", "under", "big", "red", "house", "car"]
QUICK = {"baselines": False}
"""Train settings for these tests: no majority / linear baselines fitted after training."""
PATCHES = {"left": (1, 1), "right": (5, 5)}
"""Where each image class's bright 2 x 2 patch sits (row, column of its top-left pixel)."""


def _decided_table(rows: int = 400, seed: int = 0) -> pd.DataFrame:
    """Six columns; only `amount` (number) and `grade` (category) decide the label."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "amount": rng.normal(size=rows).round(3),
            "noise1": rng.normal(size=rows).round(3),
            "grade": rng.choice(["p", "q", "r"], rows),
            "noise2": rng.normal(size=rows).round(3),
            "shade": rng.choice(["u", "v", "w"], rows),
            "flag": rng.choice(["yes", "no"], rows),
        }
    )
    score = 2 * frame["amount"] + 2 * (frame["grade"] == "p") - 2 * (frame["grade"] == "r")
    frame["label"] = np.where(score > 0, "high", "low")
    return frame


@pytest.fixture(scope="module")
def table_run(tmp_path_factory: pytest.TempPathFactory) -> mg.Run:
    folder = tmp_path_factory.mktemp("table")
    _decided_table().to_csv(folder / "table.csv", index=False)
    inputs = [
        {"name": "amount", "type": "number"},
        {"name": "noise1", "type": "number"},
        {"name": "grade", "type": "category"},
        {"name": "noise2", "type": "number"},
        {"name": "shade", "type": "category"},
        {"name": "flag", "type": "binary"},
    ]
    config = {
        "name": "decided",
        "data": {"source": str(folder / "table.csv"), "split": {"val": 0.1, "test": 0.2}},
        "inputs": inputs,
        "outputs": [{"name": "label", "type": "category"}],
        "model": {"arch": "mlp", "hidden": [16]},
        "train": {
            "epochs": 15,
            "batch_size": 32,
            "optimizer": {"name": "adamw", "lr": 0.01},
            **QUICK,
        },
    }
    return mg.train(config, output_dir=folder / "run")


def test_the_two_deciding_columns_are_the_most_important(table_run: mg.Run) -> None:
    assert table_run.metrics["test"]["accuracy"] >= 0.9
    explanations = table_run.explain(rows=60)
    top_two = list(explanations.importance)[:2]
    assert set(top_two) == {"amount", "grade"}, explanations.importance
    trust = explanations.summary["trust"]
    # completeness on a trained MLP: every row within 5% (steps raised where needed)
    assert trust["completeness"]["passed"] and trust["completeness"]["gap_max"] <= 0.05
    for row in explanations.rows:
        gap = row["integrated_gradients"]["completeness_gap"]
        assert gap <= 0.05
        total = sum(row["attributions"].values())
        assert row["explained"]["class"] == row["prediction"]["label"]
        assert np.isfinite(total)
    assert trust["deletion"]["passed"]
    assert trust["deletion"]["area_attributed"] > trust["deletion"]["area_random"]
    # model randomisation: re-initialised weights give different attributions
    assert trust["randomisation"]["passed"] and trust["randomisation"]["rows"] == 32
    # permutation importance on the whole test split puts the same two columns on top
    permutation = trust["permutation"]
    assert permutation["rows"] == 80 and permutation["metric"] == "accuracy"
    assert set(list(permutation["importance"])[:2]) == {"amount", "grade"}, permutation
    assert min(permutation["importance"]["amount"], permutation["importance"]["grade"]) > 0.1
    assert permutation["rank_correlation"] > 0.5 and permutation["passed"]


@pytest.mark.parametrize("method", ["saliency", "occlusion", "shap"])
def test_other_methods_find_the_deciding_columns_too(table_run: mg.Run, method: str) -> None:
    explanations = table_run.explain(rows=60, method=method)
    assert set(list(explanations.importance)[:2]) == {"amount", "grade"}
    assert "completeness" not in explanations.summary["trust"]
    assert explanations.summary["trust"]["deletion"]["passed"]
    if method == "shap":  # Kernel SHAP's values sum to f(x) - f(baseline), as the fit asks
        assert explanations.summary["trust"]["additivity"]["gap_max"] <= 0.05
    if method == "saliency":  # occlusion keeps more of the input's ranking (docs/explain.md)
        assert explanations.summary["trust"]["randomisation"]["passed"]


def test_a_chosen_class_is_explained_for_every_row(table_run: mg.Run) -> None:
    explanations = table_run.explain(rows=10, target="low")
    assert {row["explained"]["class"] for row in explanations.rows} == {"low"}


def _bright_patch_image(kind: str, rng: np.random.Generator) -> Image.Image:
    pixels = rng.integers(0, 40, (8, 8)).astype(np.uint8)
    top, left = PATCHES[kind]
    pixels[top : top + 2, left : left + 2] = 255
    return Image.fromarray(pixels)


@pytest.fixture(scope="module")
def image_run(tmp_path_factory: pytest.TempPathFactory) -> mg.Run:
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for kind in PATCHES:
        (folder / "patches" / kind).mkdir(parents=True)
        for i in range(60):
            _bright_patch_image(kind, rng).save(folder / "patches" / kind / f"{i}.png")
    config = {
        "data": {"source": str(folder / "patches"), "split": {"val": 0.1, "test": 0.2}},
        "inputs": [{"name": "image", "type": "image", "channels": 1}],
        "outputs": [{"name": "label", "type": "category"}],
        # a CNN's global pooling cannot tell where a patch is; the MLP sees every pixel
        "model": {"arch": "mlp", "hidden": [16]},
        "train": {
            "epochs": 10,
            "batch_size": 16,
            "optimizer": {"name": "adamw", "lr": 0.01},
            **QUICK,
        },
    }
    return mg.train(config, output_dir=folder / "run")


def test_the_bright_patch_gets_the_highest_attribution_mass(
    image_run: mg.Run, tmp_path: Path
) -> None:
    explanations = image_run.explain(rows=24)
    assert len(explanations.images) == 24
    for row, image in zip(explanations.rows, explanations.images, strict=True):
        assert image.values.shape == (8, 8)
        windows = image.values[:-1, :-1] + image.values[1:, :-1] + image.values[:-1, 1:]
        windows = windows + image.values[1:, 1:]  # (7, 7): each 2 x 2 window's mass
        peak = np.unravel_index(np.argmax(windows), windows.shape)
        assert tuple(int(i) for i in peak) == PATCHES[row["explained"]["class"]]
    assert explanations.summary["trust"]["deletion"]["passed"]
    folder = write_explanations(explanations, tmp_path / "explain")
    pngs = sorted((folder / "images").glob("*.png"))
    assert len(pngs) == 20 and pngs[0].read_bytes()[:4] == b"\x89PNG"  # the first 20 rows
    assert (folder / "explain.html").read_text().count("data:image/png;base64,") == 20
    maps = load_file(str(folder / "image_maps.safetensors"))  # every row's map
    assert len(maps) == 24
    first = explanations.images[0]
    np.testing.assert_allclose(maps[f"{first.row}-{first.column}"], first.values, rtol=1e-6)


@pytest.fixture(scope="module")
def text_run(tmp_path_factory: pytest.TempPathFactory) -> mg.Run:
    folder = tmp_path_factory.mktemp("text")
    rng = np.random.default_rng(0)
    texts, labels = [], []
    for i in range(400):
        words = list(rng.choice(FILLER, rng.integers(5, 9)))
        if i % 2:
            words.insert(int(rng.integers(0, len(words))), "zebra")
        texts.append(" ".join(words))
        labels.append("yes" if i % 2 else "no")
    pd.DataFrame({"text": texts, "label": labels}).to_csv(folder / "text.csv", index=False)
    config = {
        "data": {"source": str(folder / "text.csv"), "split": {"val": 0.1, "test": 0.2}},
        "inputs": [{"name": "text", "type": "text", "embedding_dim": 16}],
        "outputs": [{"name": "label", "type": "category"}],
        "model": {"arch": "mlp", "hidden": [16]},
        "train": {
            "epochs": 15,
            "batch_size": 32,
            "optimizer": {"name": "adamw", "lr": 0.01},
            **QUICK,
        },
    }
    return mg.train(config, output_dir=folder / "run")


def test_the_keyword_gets_the_top_token_value(text_run: mg.Run, tmp_path: Path) -> None:
    explanations = text_run.explain(rows=40)
    with_keyword = [
        row for row in explanations.rows if any(w == "zebra" for w, _ in row["text"]["text"])
    ]
    assert len(with_keyword) >= 10
    for row in with_keyword:
        pairs = row["text"]["text"]
        assert max(pairs, key=lambda pair: pair[1])[0] == "zebra", pairs
    assert explanations.summary["trust"]["deletion"]["passed"]
    assert explanations.summary["trust"]["completeness"]["passed"]
    page = write_explanations(explanations, tmp_path / "explain") / "explain.html"
    assert ">zebra</span>" in page.read_text()


def test_cli_writes_the_explain_folder_and_refuses_to_replace_it_silently(
    table_run: mg.Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(table_run.path.parent)
    before = {p.name: p.stat().st_mtime_ns for p in table_run.path.iterdir()}
    done = run_cli("explain", "run", "--rows", "5", "--method", "occlusion")
    assert done.code == 0, done.stderr
    folder = table_run.path / "explain"
    lines = (folder / "explanations.jsonl").read_text().splitlines()
    assert len(lines) == 5 and set(json.loads(lines[0])["attributions"]) == {
        "amount", "noise1", "grade", "noise2", "shade", "flag"
    }  # fmt: skip
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["method"] == "occlusion" and summary["rows"] == 5
    assert (folder / "explain.html").is_file()
    after = {p.name: p.stat().st_mtime_ns for p in table_run.path.iterdir() if p.name != "explain"}
    assert after == before  # no other run file touched

    again = run_cli("explain", "run", "--rows", "5")
    assert again.code == 2
    assert again.stderr.strip() == (
        "error: --output run/explain already holds explanations; pass --overwrite to replace them"
    )
    replaced = run_cli("explain", "run", "--row-ids", "0,3", "--overwrite")
    assert replaced.code == 0, replaced.stderr
    assert len((folder / "explanations.jsonl").read_text().splitlines()) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target", "medium"], "--target medium: not a class of output 'label'"),
        (["--method", "lime"], "--method lime: unknown; choose one of ig, saliency, occlusion"),
        (["--output-name", "price"], "--output-name price: the run has no such output"),
        (["--row-ids", "0,x"], "--row-ids 0,x: give row numbers separated by commas"),
        (["--row-ids", "999"], "--row-ids 999 is out of range"),
        (["--data", "nope.csv"], "--data nope.csv: no such file or folder"),
        (["--output", "run"], "--output run holds other files"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    table_run: mg.Run, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.chdir(table_run.path.parent)
    result = run_cli("explain", "run", *args)
    assert result.code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_a_language_model_is_explained_by_its_causal_attention_maps(tmp_path: Path) -> None:
    (tmp_path / "corpus").mkdir()
    for i in range(5):
        (tmp_path / "corpus" / f"{i}.txt").write_text("the cat sat on the mat. " * 50)
    config = {
        "data": {
            "source": str(tmp_path / "corpus"),
            "format": "text",
            "split": {"val": 0.2, "test": 0.2},
        },
        "outputs": [{"name": "text", "type": "text", "tokenizer": "char", "vocab_size": 32}],
        "model": {"arch": "gpt", "context": 16, "layers": 1, "heads": 2, "dim": 16},
        "train": {"epochs": 1, "batch_size": 8, "max_steps": 2, **QUICK},
    }
    mg.train(config, output_dir=tmp_path / "lm")
    result = run_cli("explain", tmp_path / "lm")
    assert result.code == 0, result.stderr
    folder = tmp_path / "lm" / "explain"
    rows = [json.loads(line) for line in (folder / "attention.jsonl").read_text().splitlines()]
    assert len(rows) == 1  # one test document
    first = rows[0]
    assert "".join(first["tokens"]) == "the cat sat on t"  # its first 16 tokens (the context)
    weights = np.array(first["mean_over_heads"])  # (layers, T, T)
    assert weights.shape == (1, 16, 16) and first["heads"] == 2
    assert np.allclose(weights.sum(axis=-1), 1, atol=1e-3) and not np.triu(weights[0], 1).any()
    assert (folder / "attention" / f"{first['row']}-text.png").read_bytes()[:4] == b"\x89PNG"
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["method"] == "ig" and summary["trust"]["completeness"]["gap_max"] <= 0.05
    assert summary["internal_batch_size"] == 4096 // 16  # automatic: 4,096 / the 16 tokens
    row = json.loads((folder / "explanations.jsonl").read_text().splitlines()[0])
    assert [t for t, _ in row["token_attributions"]] == first["tokens"]
    # the values sum to the change of the explained logit from the all-zero embeddings
    assert row["integrated_gradients"]["completeness_gap"] <= 0.05
    assert row["explained"]["next_token"] == row["predicted_next"][-1]
    assert set(summary["trust"]) == {"completeness", "deletion", "randomisation"}
    assert summary["trust"]["randomisation"]["rows"] == 1 and "area_random" in row["deletion"]
    page = (folder / "explain.html").read_text()
    assert "Attention</h2>" in page and "Explaining the next token" in page
    refused = run_cli("explain", tmp_path / "lm", "--method", "saliency", "--overwrite")
    assert refused.code == 2 and refused.stderr.strip() == (
        "error: --method saliency: a gpt run is explained by ig only; leave it out"
    )
    assert (folder / "attention.jsonl").is_file()  # the earlier explanation is left as it was
    targeted = run_cli("explain", tmp_path / "lm", "--target", "x", "--overwrite")
    assert targeted.code == 2 and "--target: a gpt run has no output columns" in targeted.stderr


def test_the_speed_benchmark_runs_in_tiny_mode() -> None:
    import subprocess
    import sys

    from conftest import REPO

    result = subprocess.run(
        [sys.executable, "benchmarks/explain_speed.py", "--tiny"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    row = json.loads(result.stdout.splitlines()[-1])
    assert row["rows"] == 16 and row["megalith_rows_per_s"] > 0 and row["ratio"] > 0
    assert row["completeness"]["rows_by_steps"]
    parts = row["seconds_by_part"]  # where the time went, writing included
    assert {"ig", "deletion", "randomisation", "write"} <= set(parts) and parts["ig"] > 0
    assert row["ig_alone_rows_per_s"] >= row["megalith_rows_per_s"]


def test_a_spike_s_step_gets_the_top_step_value_and_pieces_merge_into_words(
    tmp_path: Path,
) -> None:
    """A sequence (CNN encoder) beside a WordPiece text that does not matter: the label says whether
    step 7 spikes; the spike's step leads each spiking row, and the text comes back as words."""
    rng = np.random.default_rng(0)
    cells, notes, labels = [], [], []
    for i in range(200):
        values = rng.normal(0, 0.3, 12)
        if i % 2:
            values[7] += 4
        cells.append(" ".join(f"{v:.3f}" for v in values))
        notes.append(" ".join(rng.choice(["quickly", "jumping", "foxes", "lazy", "dogs"], 4)))
        labels.append("spike" if i % 2 else "flat")
    frame = pd.DataFrame({"series": cells, "note": notes, "label": labels})
    frame.to_csv(tmp_path / "series.csv", index=False)
    config = {
        "data": {"source": str(tmp_path / "series.csv"), "split": {"val": 0.1, "test": 0.2}},
        "inputs": [
            {"name": "series", "type": "sequence", "encoder": {"kind": "cnn", "hidden": 8}},
            {"name": "note", "type": "text", "tokenizer": "wordpiece", "vocab_size": 40},
        ],
        "outputs": [{"name": "label", "type": "category"}],
        "model": {"arch": "mlp", "hidden": [16]},
        "train": {
            "epochs": 10,
            "batch_size": 32,
            "optimizer": {"name": "adamw", "lr": 0.01},
            **QUICK,
        },
    }
    run = mg.train(config, output_dir=tmp_path / "run")
    explanations = run.explain(rows=30)
    assert explanations.importance["series"] > explanations.importance["note"]
    spiking = [row for row in explanations.rows if row["explained"]["class"] == "spike"]
    assert len(spiking) >= 5
    for row in explanations.rows:
        steps = row["sequence"]["series"]
        assert len(steps) == 12
        assert sum(steps) == pytest.approx(row["attributions"]["series"], abs=1e-5)
        written = frame.loc[row["row"], "note"].split()
        words = [word for word, _ in row["text"]["note"]]
        # pieces past the fitted max_length were cut: the last word may be a word's beginning
        assert words[:-1] == written[: len(words) - 1] and written[len(words) - 1].startswith(
            words[-1]
        )
    for row in spiking:
        assert int(np.argmax(row["sequence"]["series"])) == 7, row["sequence"]["series"]


def test_a_transformer_text_run_writes_attention_maps_over_its_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(1)
    texts = [" ".join(rng.choice(FILLER, 5)) + (" zebra" if i % 2 else "") for i in range(120)]
    labels = ["yes" if i % 2 else "no" for i in range(120)]
    pd.DataFrame({"text": texts, "label": labels}).to_csv(tmp_path / "text.csv", index=False)
    encoder = {"kind": "transformer", "layers": 2, "heads": 2}
    config = {
        "data": {"source": str(tmp_path / "text.csv"), "split": {"val": 0.1, "test": 0.2}},
        "inputs": [{"name": "text", "type": "text", "embedding_dim": 8, "encoder": encoder}],
        "outputs": [{"name": "label", "type": "category"}],
        "model": {"arch": "mlp", "hidden": [8]},
        "train": {"epochs": 2, "batch_size": 32, **QUICK},
    }
    run = mg.train(config, output_dir=tmp_path / "run")
    monkeypatch.chdir(tmp_path)
    done = run_cli("explain", "run", "--rows", "8", "--method", "saliency")
    assert done.code == 0, done.stderr
    folder = tmp_path / "run" / "explain"
    maps = [json.loads(line) for line in (folder / "attention.jsonl").read_text().splitlines()]
    test_rows = run.data_splits()[1]["test"]
    assert [m["row"] for m in maps] == list(test_rows.index[:8])
    for found in maps:
        assert found["tokens"] == test_rows.loc[found["row"], "text"].split()  # words, no padding
        weights = np.array(found["mean_over_heads"])  # (layers, T, T)
        assert weights.shape == (2, len(found["tokens"]), len(found["tokens"]))
        assert np.allclose(weights.sum(axis=-1), 1, atol=1e-3)
    assert len(list((folder / "attention").glob("*.png"))) == 5  # the first rows are drawn
    assert (folder / "explain.html").read_text().count("alt='attention/") == 5
    quiet = run_cli("explain", "run", "--rows", "2", "--no-attention", "--overwrite")
    assert quiet.code == 0, quiet.stderr
    assert not (folder / "attention.jsonl").exists()


EXPLAIN_FACTS = """({
  headings: [...document.querySelectorAll("h2")].map(h => h.textContent.trim()),
  images: document.images.length,
  broken: [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).length,
  width: document.documentElement.scrollWidth,
  explainLink: [...document.querySelectorAll("a")].map(a => a.getAttribute("href"))
    .filter(h => h === "explain/explain.html").length,
})"""


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"{CHROMIUM} not installed (apt-get install chromium)"
)
def test_explain_html_renders_offline_and_the_report_links_to_it(image_run: mg.Run) -> None:
    from megalith.evaluate.report import write_report
    from megalith.runs import RunDir

    folder = write_explanations(
        image_run.explain(rows=6), RunDir(image_run.path).explanations, overwrite=True
    )
    page = load_page(folder / "explain.html", EXPLAIN_FACTS)
    assert page.failed == [] and page.errors == []
    assert all(url.startswith("data:image/png;base64,") for url in page.requests[1:])
    facts = page.facts
    assert facts["headings"][:2] == ["Trust", "Global importance (mean |attribution| per column)"]
    assert facts["images"] == 6 and facts["broken"] == 0 and facts["width"] <= 1280
    report = load_page(write_report(image_run), EXPLAIN_FACTS)
    assert report.failed == [] and report.facts["explainLink"] == 1  # its own section
    assert "Explanations" in report.facts["headings"]


def test_a_seq2seq_run_writes_which_source_tokens_each_written_token_looked_at(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(0)
    words = ["".join(rng.choice(list("abcdef"), size=rng.integers(2, 5))) for _ in range(120)]
    pairs = pd.DataFrame({"word": words, "reversed": [" ".join(reversed(w)) for w in words]})
    pairs.to_csv(tmp_path / "pairs.csv", index=False)
    config = {
        "data": {"source": str(tmp_path / "pairs.csv"), "split": {"val": 0.1, "test": 0.1}},
        "inputs": [{"name": "word", "type": "text", "tokenizer": "char"}],
        "outputs": [{"name": "reversed", "type": "text", "tokenizer": "word", "vocab_size": 12}],
        "model": {"arch": "seq2seq", "layers": 1, "heads": 2, "dim": 16, "beam_size": 1},
        "train": {"epochs": 1, "batch_size": 32, **QUICK},
    }
    run = mg.train(config, output_dir=tmp_path / "run")
    explanations = run.explain(rows=4)
    assert explanations.summary["method"] == "ig" and len(explanations.rows) == 4
    test_rows = run.data_splits()[1]["test"]
    for row in explanations.rows:
        assert row["source_tokens"] == list(test_rows.loc[row["row"], "word"])
    # automatic: 4,096 / the source's tokens, never fewer than the written ones; the largest
    assert explanations.summary["internal_batch_size"] == max(
        max(len(row["output_tokens"]), 4096 // len(row["source_tokens"]))
        for row in explanations.rows
    )
    by_input: dict[str, list[Any]] = {}
    for found in explanations.attention:
        by_input.setdefault(found.input, []).append(found)
    assert [len(maps) for maps in by_input.values()] == [4, 4]
    for found in by_input["reversed<-word"]:
        assert found.keys == list(test_rows.loc[found.row, "word"]) and found.tokens[-1] == "[EOS]"
        assert found.weights.shape == (1, 2, len(found.tokens), len(found.keys))
        assert np.allclose(found.weights.sum(axis=-1), 1, atol=1e-5)
    folder = write_explanations(explanations, tmp_path / "explain")
    lines = (folder / "attention.jsonl").read_text().splitlines()
    assert len(lines) == 8 and "keys" in json.loads(lines[1])
    assert len(list((folder / "attention").glob("*.png"))) == 8
    with pytest.raises(RunError, match="--method occlusion: a seq2seq run is explained by ig"):
        run.explain(rows=1, method="occlusion")
