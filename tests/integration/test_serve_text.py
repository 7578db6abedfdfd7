"""`megalith serve` on a text Transformer: each batch is cut to its longest text, and the
answers stay `predict`'s (which pads every text to the fitted length)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

import megalith as mg
from megalith.serving import ServeSettings, build_app, load_backend
from megalith.serving.forward import BatchForward

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

WORDS = {"sea": "wave salt tide shell boat reef gull", "hill": "rock moss goat pine peak cave fern"}
TEXTS = ["", "wave", "rock moss goat", "salt tide boat reef gull wave shell", None, "pine pine"]


@pytest.fixture(scope="module")
def text_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1-layer Transformer over texts of 1-24 words, exported next to the run."""
    folder = tmp_path_factory.mktemp("served-text")
    rng = np.random.default_rng(0)
    labels = rng.choice(sorted(WORDS), size=160)
    texts = [
        " ".join(rng.choice(WORDS[label].split(), size=rng.integers(1, 25))) for label in labels
    ]
    pd.DataFrame({"text": texts, "label": labels}).to_csv(folder / "texts.csv", index=False)
    config = {
        "data": {"source": str(folder / "texts.csv")},
        "inputs": [
            {
                "name": "text",
                "type": "text",
                "max_length": 32,
                "embedding_dim": 16,
                "encoder": {"kind": "transformer", "layers": 1, "heads": 2},
            }
        ],
        "outputs": [{"name": "label", "type": "category"}],
        "train": {"epochs": 1, "batch_size": 32, "baselines": False},
    }
    run = mg.train(config, output_dir=folder / "run")
    run.export(folder / "run" / "bundle")
    return folder / "run"


LONG = " ".join(["wave", "rock"] * 12)  # 24 words
GROUPED = ["wave"] * 10 + [LONG, "reef " + LONG]
"""Ten one-word texts and two long ones: worth two calls of the model, at 1 and 25 tokens."""


@pytest.mark.parametrize("kind", ["torch", "onnx"])
@pytest.mark.parametrize(("texts", "widths"), [(TEXTS, [7]), (GROUPED, [1, 25])])
def test_a_batch_runs_at_the_length_its_texts_use_and_answers_like_predict(
    text_run: Path, kind: str, texts: list[str | None], widths: list[int]
) -> None:
    backend = load_backend(text_run, kind)  # type: ignore[arg-type]
    forward = BatchForward(backend, None)
    assert forward.cut == ["text"]
    seen_widths: list[int] = []
    if kind == "torch":
        run, inner = backend.run, backend.run.forward_table

        def seen(tensors: Any) -> Any:
            seen_widths.append(tensors.inputs["text"].shape[1])
            return inner(tensors)

        run.forward_table = seen
    else:
        bundle: Any = backend.predictor
        graph = bundle.run_graph

        def seen_graph(arrays: Any, batch_size: int) -> Any:
            seen_widths.append(arrays[0].shape[1])
            return graph(arrays, batch_size)

        bundle.run_graph = seen_graph
    frame = pd.DataFrame({"text": texts})
    columns = forward(frame)
    assert sorted(seen_widths) == widths  # not the fitted 32
    expected = backend.predictor.predict(frame)
    assert list(columns) == list(expected.columns)
    assert list(columns["label"]) == expected["label"].tolist()
    for name in expected.columns[1:]:
        np.testing.assert_allclose(columns[name], expected[name], atol=1e-6)


def test_served_text_answers_equal_predict(text_run: Path) -> None:
    backend = load_backend(text_run, "onnx")
    rows = [{"text": text} for text in TEXTS]
    with TestClient(build_app(backend, ServeSettings())) as client:
        answer = client.post("/predict", json={"rows": rows})
    assert answer.status_code == 200, answer.text
    got = pd.DataFrame(answer.json()["predictions"])
    expected = mg.load(text_run).predict(pd.DataFrame({"text": TEXTS}))
    assert got["label"].tolist() == expected["label"].tolist()
    np.testing.assert_allclose(got["label_prob_sea"], expected["label_prob_sea"], atol=1e-5)
