"""A served `set` input takes a JSON list of names as well as a separated text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from fastapi.testclient import TestClient

import megalith as mg
from megalith.serving import ServeSettings, build_app, load_backend

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_a_json_list_and_a_separated_text_get_the_same_answer(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    names = ["numpy", "torch", "rich", "pandas", "jax"]
    tags = ["|".join(rng.choice(names, size=rng.integers(1, 4), replace=False)) for _ in range(160)]
    frame = pd.DataFrame({"tags": tags, "label": ["torch" in t for t in tags]})
    frame.to_csv(tmp_path / "table.csv", index=False)
    config = {
        "data": {"source": "table.csv"},
        "inputs": [{"name": "tags", "type": "set", "min_count": 1}],
        "outputs": [{"name": "label", "type": "binary"}],
        "train": {"epochs": 2, "batch_size": 32, "baselines": False},
    }
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(config))
    run = mg.train(tmp_path / "cfg.yaml", output_dir=tmp_path / "run")
    listed = [{"tags": ["torch", "rich"]}, {"tags": []}, {"tags": ["jax"]}]
    texts = [{"tags": "torch|rich"}, {"tags": ""}, {"tags": "jax"}]
    backend = load_backend(tmp_path / "run", "torch")
    with TestClient(build_app(backend, ServeSettings())) as client:
        from_lists = client.post("/predict", json={"rows": listed})
        from_texts = client.post("/predict", json={"rows": texts})
        wrong = client.post("/predict", json={"rows": [{"tags": {"torch": 1}}]})
    assert from_lists.status_code == 200, from_lists.text
    assert from_lists.json() == from_texts.json()
    expected = run.predict(pd.DataFrame(texts))["label_prob_True"].tolist()
    served = [row["label_prob_True"] for row in from_lists.json()["predictions"]]
    assert np.allclose(served, expected, atol=1e-5)
    assert wrong.status_code == 422 and "tags" in wrong.text
    run.export(tmp_path / "run" / "bundle")  # the bundle's server reads lists the same way
    with TestClient(build_app(load_backend(tmp_path / "run", "onnx"), ServeSettings())) as client:
        from_bundle = client.post("/predict", json={"rows": listed})
    assert from_bundle.status_code == 200, from_bundle.text
    bundled = [row["label_prob_True"] for row in from_bundle.json()["predictions"]]
    assert np.allclose(bundled, expected, atol=1e-5)
