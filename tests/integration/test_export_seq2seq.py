"""A seq2seq run exports as an encoder and a decoder graph; the bundle writes, without torch,
exactly the texts the run writes (beam search and greedy), from Python, the CLI and the server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO, CliResult, run_cli
from fastapi.testclient import TestClient
from test_seq2seq_cli import reversal_table

import megalith as mg
from megalith.errors import RunError
from megalith.runtime import load_bundle

Cli = Callable[..., CliResult]
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> mg.Run:
    """A tiny reversal model with beam search, trained a few steps: it writes varied texts
    (mostly wrong ones), some ended by the end id, some cut at the longest target."""
    folder = tmp_path_factory.mktemp("seq2seq")
    reversal_table(300, seed=0).to_csv(folder / "pairs.csv", index=False)
    config = {
        "name": "reverse",
        "data": {"source": str(folder / "pairs.csv"), "split": {"val": 0.1, "test": 0.2}},
        "inputs": [{"name": "word", "type": "text", "tokenizer": "char"}],
        "outputs": [{"name": "reversed", "type": "text", "tokenizer": "word", "vocab_size": 16}],
        "model": {"arch": "seq2seq", "layers": 1, "heads": 2, "dim": 16, "beam_size": 3},
        "train": {"epochs": 1, "batch_size": 16, "optimizer": {"name": "adamw", "lr": 0.02}},
    }
    return mg.train(config, output_dir=folder / "run")


@pytest.fixture(scope="module")
def bundle(run: mg.Run) -> Path:
    return run.export(run.path.parent / "bundle")


def new_rows() -> pd.DataFrame:
    return reversal_table(50, seed=3)[["word"]]


@pytest.mark.slow  # training, an export of two graphs and a check by beam search: ~20 s
def test_beam_search_bundle_writes_the_runs_texts(run: mg.Run, bundle: Path) -> None:
    described = json.loads((bundle / "bundle.json").read_text())
    assert described["task"] == "seq2seq"
    assert {role: g["file"] for role, g in described["graphs"].items()} == {
        "encoder": "encoder.onnx",
        "decoder": "decoder.onnx",
    }
    assert described["decoding"]["beam_size"] == 3
    verified = described["verified"]
    assert verified["texts"]["identical_texts"] and verified["texts"]["rows"] == 60
    assert verified["max_abs_difference"]["reversed"] <= 1e-4
    assert not (bundle / "model.onnx").exists()

    rows = new_rows()
    found, expected = load_bundle(bundle).predict(rows), run.predict(rows)
    pd.testing.assert_frame_equal(found, expected)
    assert expected["reversed"].nunique() >= 3  # varied texts, not one repeated answer
    test = run.data_splits()[1]["test"].drop(columns=["reversed"])
    pd.testing.assert_frame_equal(
        load_bundle(bundle).predict(test, batch_size=5), run.predict(test)
    )


@pytest.mark.slow  # an export and a check by greedy decoding
def test_greedy_bundle_writes_the_runs_texts(run: mg.Run, tmp_path: Path) -> None:
    greedy_dir = tmp_path / "greedy"
    shutil.copytree(run.path, greedy_dir)  # the same weights, decoded greedily
    config = yaml.safe_load((greedy_dir / "config.yaml").read_text())
    config["model"]["beam_size"] = 1
    (greedy_dir / "config.yaml").write_text(yaml.safe_dump(config))
    greedy = mg.load(greedy_dir)
    bundle = greedy.export(tmp_path / "bundle")
    assert json.loads((bundle / "bundle.json").read_text())["decoding"]["beam_size"] == 1
    rows = new_rows()
    found, expected = load_bundle(bundle).predict(rows, batch_size=7), greedy.predict(rows)
    pd.testing.assert_frame_equal(found, expected)
    assert expected["reversed"].tolist() != run.predict(rows)["reversed"].tolist()


def test_graph_lengths_are_free(bundle: Path) -> None:
    """Shorter sources and any prefix length up to the longest target run in both graphs."""
    loaded = load_bundle(bundle)
    graphs = loaded.seq2seq
    source = np.array([[4, 5, 6], [7, 0, 0]], dtype=np.int64)
    memory, mask = graphs.encode(source)
    assert memory.shape[:2] == (2, 3) and mask.tolist() == [[True] * 3, [True, False, False]]
    longest = graphs.decoding.max_new_tokens
    for length in (1, longest):
        logits = graphs.logits(np.full((2, length), 2, dtype=np.int64), memory, mask)
        assert logits.shape == (2, length, described_vocabulary(bundle))


def described_vocabulary(bundle: Path) -> int:
    graphs = json.loads((bundle / "bundle.json").read_text())["graphs"]
    return int(graphs["decoder"]["outputs"]["logits"].split(",")[2].split(")")[0])


@pytest.mark.slow  # CLI processes, each importing torch or onnxruntime
def test_cli_export_then_predict_without_torch(run: mg.Run, cli: Cli, tmp_path: Path) -> None:
    exported = cli("export", run.path, "--output", "cli-bundle")
    assert exported.returncode == 0, exported.stderr
    new_rows().to_csv(tmp_path / "new.csv", index=False)
    command = (
        "import sys; sys.modules['torch'] = None; from megalith.cli import main; "
        "sys.argv = ['megalith', 'predict', 'cli-bundle', '--data', 'new.csv', '--output', "
        "'out.csv']; main()"
    )
    done = subprocess.run(
        [sys.executable, "-c", command],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert done.returncode == 0, done.stderr
    out = pd.read_csv(tmp_path / "out.csv", keep_default_na=False)
    assert list(out.columns) == ["word", "reversed"]
    assert out["reversed"].tolist() == run.predict(new_rows())["reversed"].tolist()


def test_a_missing_or_damaged_decoder_is_one_line(
    bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(bundle, copy)
    (copy / "decoder.onnx").unlink()
    with pytest.raises(RunError, match=r"decoder\.onnx is missing; export the run again"):
        load_bundle(copy)
    (copy / "decoder.onnx").write_bytes((bundle / "decoder.onnx").read_bytes()[:300])
    with pytest.raises(RunError, match=r"decoder\.onnx: ONNX Runtime cannot load this graph"):
        load_bundle(copy)
    new_rows().to_csv(tmp_path / "new.csv", index=False)
    monkeypatch.chdir(tmp_path)
    outcome = run_cli("predict", copy, "--data", "new.csv")
    assert outcome.code == 2
    assert len(outcome.stderr.strip().splitlines()) == 1, outcome.stderr
    assert "decoder.onnx: ONNX Runtime cannot load this graph" in outcome.stderr


@pytest.mark.slow  # an export whose text check fails
def test_the_export_fails_when_the_bundle_would_write_other_texts(
    run: mg.Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from megalith.runtime.decoding import Decoding

    cut = Decoding(beam_size=3, max_new_tokens=1)  # a runtime that stops after one token
    monkeypatch.setattr(Decoding, "from_description", classmethod(lambda cls, entry: cut))
    with pytest.raises(RunError, match="writes a different text than the run on") as error:
        run.export(tmp_path / "never")
    assert "the bundle was not written" in str(error.value)
    assert not (tmp_path / "never").exists()


def test_served_bundle_and_run_answer_with_the_runs_texts(run: mg.Run, bundle: Path) -> None:
    from megalith.serving import ServeSettings, build_app, load_backend

    rows = new_rows()
    body = {"rows": rows.to_dict(orient="records")}
    expected = run.predict(rows)["reversed"].tolist()
    for served, backend in ((bundle, "onnx"), (run.path, "torch")):
        app = build_app(load_backend(served, backend), ServeSettings())  # type: ignore[arg-type]
        with TestClient(app) as client:
            answer = client.post("/predict", json=body)
        assert answer.status_code == 200, answer.text
        assert [p["reversed"] for p in answer.json()["predictions"]] == expected
