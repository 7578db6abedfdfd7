"""`megalith serve`: answers equal `predict`, every bad request a 4xx naming the field, limits."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import make_table
from fastapi.testclient import TestClient
from PIL import Image

import megalith as mg
from megalith.serving import ServeSettings, build_app, load_backend

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def table_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLP on a mixed table whose classes are zero-padded codes ('007', '010', '100')."""
    folder = tmp_path_factory.mktemp("served")
    frame = make_table(rows=240)
    frame["label"] = frame["label"].map({"low": "007", "mid": "010", "high": "100"})
    frame.drop(columns=["id", "constant"]).to_csv(folder / "table.csv", index=False)
    config = {
        "data": {"source": "table.csv"},
        "inputs": [
            {"name": "size", "type": "number"},
            {"name": "color", "type": "category"},
            {"name": "member", "type": "binary"},
        ],
        "outputs": [{"name": "label", "type": "category"}],
        "train": {"epochs": 3, "batch_size": 32, "baselines": False},
    }
    (folder / "cfg.yaml").write_text(yaml.safe_dump(config))
    mg.train(folder / "cfg.yaml", output_dir=folder / "run")
    return folder / "run"


def _client(run: Path, **settings: Any) -> TestClient:
    backend = settings.pop("backend", "torch")
    return TestClient(build_app(load_backend(run, backend), ServeSettings(**settings)))


def _rows(n: int, seed: int = 5) -> list[dict[str, Any]]:
    frame = make_table(rows=n, seed=seed)[["size", "color", "member"]]
    return [dict(zip(frame.columns, row, strict=True)) for row in frame.itertuples(index=False)]


def test_answers_equal_predict_and_metadata_names_the_users_classes(table_run: Path) -> None:
    rows = _rows(25)
    expected = mg.load(table_run).predict(pd.DataFrame(rows))
    with _client(table_run) as client:
        assert client.get("/health").json()["status"] == "ok"
        meta = client.get("/metadata").json()
        assert meta["outputs"][0]["classes"] == ["007", "010", "100"]
        assert [i["name"] for i in meta["inputs"]] == ["size", "color", "member"]
        answer = client.post("/predict", json={"rows": rows})
    assert answer.status_code == 200, answer.text
    got = pd.DataFrame(answer.json()["predictions"])
    assert got["label"].tolist() == expected["label"].tolist()
    for column in ("label_prob_007", "label_prob_010", "label_prob_100"):
        np.testing.assert_allclose(got[column], expected[column], atol=1e-6)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"rows": [{"size": 1.0, "color": "red"}]}, "rows.0.member"),  # missing
        ({"rows": [{"size": "big", "color": "red", "member": "yes"}]}, "rows.0.size"),  # type
        ({"rows": [{"size": 1, "color": "red", "member": "yes", "age": 3}]}, "rows.0.age"),
        ({"rows": []}, "rows"),  # no rows
        ({"records": []}, "rows"),  # wrong envelope
        ([1, 2, 3], "body"),
    ],
)
def test_bad_requests_get_a_422_naming_the_field(table_run: Path, body: Any, field: str) -> None:
    with _client(table_run) as client:
        answer = client.post("/predict", json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"].startswith(field), answer.json()


def test_limits_on_body_rows_and_tokens(table_run: Path) -> None:
    with _client(table_run, max_body_bytes=2000, max_rows=5, token="s3cret") as client:
        assert client.post("/predict", json={"rows": _rows(2)}).status_code == 401
        headers = {"Authorization": "Bearer s3cret"}
        assert client.get("/health", headers={"Authorization": "Bearer wrong"}).status_code == 401
        ok = client.post("/predict", json={"rows": _rows(2)}, headers=headers)
        assert ok.status_code == 200, ok.text
        many = client.post("/predict", json={"rows": _rows(6)}, headers=headers)
        assert many.status_code == 422 and many.json()["detail"].startswith("rows")
        huge = client.post("/predict", json={"rows": _rows(100)}, headers=headers)
        assert huge.status_code == 413
        broken = client.post(
            "/predict",
            content=b'{"rows": [',
            headers={**headers, "content-type": "application/json"},
        )
        assert broken.status_code == 422
        assert broken.json()["detail"].startswith("body: invalid JSON at character")


def test_a_slow_model_gets_a_504_not_a_hang(table_run: Path) -> None:
    import time

    backend = load_backend(table_run, "torch")
    forward = backend.run.forward_table

    def slow(tensors: Any) -> Any:
        time.sleep(0.5)
        return forward(tensors)

    backend.run.forward_table = slow
    with TestClient(build_app(backend, ServeSettings(timeout_s=0.1))) as client:
        answer = client.post("/predict", json={"rows": _rows(1)})
    assert answer.status_code == 504 and "time limit" in answer.json()["detail"]


def test_the_onnx_backend_answers_like_pytorch(table_run: Path, tmp_path: Path) -> None:
    mg.load(table_run).export(tmp_path / "bundle")
    rows = _rows(12, seed=9)
    with _client(table_run) as torch_client, _client(tmp_path / "bundle", backend="auto") as onnx:
        assert onnx.get("/health").json()["backend"] == "onnx"
        threaded = load_backend(tmp_path / "bundle", threads=1).predictor
        assert threaded.session.get_session_options().intra_op_num_threads == 1  # type: ignore[attr-defined]
        by_torch = pd.DataFrame(
            torch_client.post("/predict", json={"rows": rows}).json()["predictions"]
        )
        by_onnx = pd.DataFrame(onnx.post("/predict", json={"rows": rows}).json()["predictions"])
    assert by_onnx["label"].tolist() == by_torch["label"].tolist()
    np.testing.assert_allclose(by_onnx["label_prob_100"], by_torch["label_prob_100"], atol=1e-4)


@pytest.fixture(scope="module")
def image_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny image classifier: dark or bright 8x8 grey squares."""
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(60):
        bright = i % 2 == 0
        level = rng.integers(170, 255) if bright else rng.integers(0, 80)
        Image.fromarray(np.full((8, 8), level, np.uint8)).save(folder / f"{i}.png")
        rows.append({"picture": f"{i}.png", "kind": "bright" if bright else "dark"})
    pd.DataFrame(rows).to_csv(folder / "images.csv", index=False)
    config = {
        "data": {"source": "images.csv"},
        "inputs": [
            {"name": "picture", "type": "image", "size": [8, 8], "channels": 1, "max_pixels": 10000}
        ],
        "outputs": [{"name": "kind", "type": "category"}],
        "model": {"arch": "mlp", "hidden": [8]},
        "train": {"epochs": 2, "batch_size": 16, "baselines": False},
    }
    (folder / "cfg.yaml").write_text(yaml.safe_dump(config))
    mg.train(folder / "cfg.yaml", output_dir=folder / "run")
    return folder


def _png(size: tuple[int, int], level: int) -> str:
    buffer = io.BytesIO()
    Image.fromarray(np.full((size[1], size[0]), level, np.uint8)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_images_as_base64_paths_only_when_allowed(image_run: Path) -> None:
    run = image_run / "run"
    expected = mg.load(run).predict(
        pd.DataFrame({"picture": ["0.png", "1.png"]}), base_dir=image_run
    )
    with _client(run) as client:
        sent = [
            {"picture": base64.b64encode((image_run / f).read_bytes()).decode()}
            for f in ("0.png", "1.png")
        ]
        answer = client.post("/predict", json={"rows": sent})
        assert answer.status_code == 200, answer.text
        assert [r["kind"] for r in answer.json()["predictions"]] == expected["kind"].tolist()
        path = client.post("/predict", json={"rows": [{"picture": "0.png"}]})
        assert path.status_code == 422 and "rows.0.picture" in path.json()["detail"]
        assert "--allow-paths" in path.json()["detail"]
        wrapped = _png((8, 8), 200)
        wrapped = "\n".join(wrapped[i : i + 76] for i in range(0, len(wrapped), 76))
        assert client.post("/predict", json={"rows": [{"picture": wrapped}]}).status_code == 200
        text = base64.b64encode(b"not an image at all").decode()
        junk = client.post("/predict", json={"rows": [{"picture": text}]})
        assert junk.status_code == 422 and "0x" not in junk.json()["detail"]
        truncated = client.post("/predict", json={"rows": [{"picture": _png((8, 8), 9)[:40]}]})
        assert truncated.status_code == 422 and "rows.0.picture" in truncated.json()["detail"]
        bomb = client.post("/predict", json={"rows": [{"picture": _png((200, 200), 0)}]})
        assert bomb.status_code == 422 and "pixels" in bomb.json()["detail"]
    with _client(run, allow_paths=image_run) as client:
        answer = client.post("/predict", json={"rows": [{"picture": "0.png"}]})
        assert (
            answer.status_code == 200
            and answer.json()["predictions"][0]["kind"] == expected["kind"][0]
        )
        escape = client.post("/predict", json={"rows": [{"picture": "../../etc/passwd"}]})
        assert escape.status_code == 422


def test_generate_streams_the_runs_text_and_a_bundle_gives_the_same(tmp_path: Path) -> None:
    from test_language_model import gpt_config, write_corpus

    write_corpus(tmp_path / "corpus")
    run = mg.train(gpt_config(tmp_path, epochs=2), output_dir=tmp_path / "run")
    expected = "".join(run.generate("the cat", max_new_tokens=12, sampling=_greedy()))
    body = {"prompt": "the cat", "max_new_tokens": 12, "temperature": 0}
    with _client(tmp_path / "run") as client:
        assert client.get("/metadata").json()["task"] == "generate"
        assert client.post("/predict", json={"rows": [{}]}).status_code == 404
        answer = client.post("/generate", json=body)
        assert answer.status_code == 200 and answer.text == expected
        assert client.post("/generate", json={"prompt": 3}).status_code == 422
    run.export(tmp_path / "lm-bundle")
    with _client(tmp_path / "lm-bundle", backend="auto") as client:
        assert client.post("/generate", json=body).text == expected
        refused = client.post("/generate", json={**body, "top_p": 0.9})
        assert refused.status_code == 422 and "top_p" in refused.json()["detail"]


def _greedy() -> Any:
    from megalith.generation import Sampling

    return Sampling(temperature=0)


def test_a_loaded_run_is_served_as_it_is(table_run: Path) -> None:
    run = mg.load(table_run)
    backend = load_backend(run)
    assert backend.name == "torch" and backend.predictor is run
    with TestClient(build_app(backend, ServeSettings())) as client:
        answer = client.post("/predict", json={"rows": _rows(3)})
    assert (
        answer.json()["predictions"][0]["label"] == run.predict(pd.DataFrame(_rows(3)))["label"][0]
    )
