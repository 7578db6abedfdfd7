"""POST /recommend: top-k lists, cold users flagged, bad requests a 4xx naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import megalith as mg
from megalith.recommend.synthetic import planted_interactions
from megalith.serving.app import ServeSettings
from megalith.serving.recommend_app import build_recommend_app


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    folder = tmp_path_factory.mktemp("serve-recommend")
    planted_interactions(n_users=60, n_items=40, per_user=8).to_csv(folder / "t.csv", index=False)
    config = {
        "data": {"source": str(folder / "t.csv")},
        "model": {"arch": "two_tower", "dim": 8},
        "recommend": {"loss": "softmax", "eval_negatives": 10},
        "train": {"epochs": 2, "batch_size": 64},
    }
    mg.train(config, output_dir=folder / "run")
    run = mg.load(folder / "run")
    settings = ServeSettings(max_rows=5, token="s3cret")
    return TestClient(build_recommend_app(run, settings, "torch"))


HEADERS = {"Authorization": "Bearer s3cret"}


def test_recommend_answers_top_k_and_flags_unknown_users(client: TestClient) -> None:
    answer = client.post(
        "/recommend", json={"users": [1, "2", "stranger"], "k": 3}, headers=HEADERS
    )
    assert answer.status_code == 200, answer.text
    lists = answer.json()["recommendations"]
    assert [entry["user"] for entry in lists] == ["1", "2", "stranger"]
    assert [entry["known_user"] for entry in lists] == [True, True, False]
    assert all(len(entry["items"]) == 3 for entry in lists)
    scores = [item["score"] for item in lists[0]["items"]]
    assert scores == sorted(scores, reverse=True)
    assert client.get("/metadata", headers=HEADERS).json()["task"] == "recommend"


def test_a_user_named_twice_gets_one_list_of_k_items(client: TestClient) -> None:
    answer = client.post("/recommend", json={"users": [1, "1", 1], "k": 2}, headers=HEADERS)
    assert answer.status_code == 200
    (only,) = answer.json()["recommendations"]
    assert only["user"] == "1" and len(only["items"]) == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"users": []}, "users"),
        ({"users": [1, 2, 3, 4, 5, 6]}, "users"),
        ({"users": [1], "k": 0}, "k"),
        ({"users": [1], "k": 10_000}, "k"),
        ({"users": [[1]]}, "users.0"),
        ({"users": [1], "colour": "red"}, "colour"),
        ({"users": ["x" * 300]}, "users"),
        ({"users": [True]}, "users.0"),  # not user "1"
        ({"users": [1], "k": True}, "k"),
        ({"users": [1], "exclude_seen": "yes"}, "exclude_seen"),
    ],
)
def test_bad_requests_get_a_422_naming_the_field(
    client: TestClient, body: dict[str, object], field: str
) -> None:
    answer = client.post("/recommend", json=body, headers=HEADERS)
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith(field)


def test_a_token_is_required_and_a_broken_body_is_a_4xx(client: TestClient) -> None:
    assert client.post("/recommend", json={"users": [1]}).status_code == 401
    broken = client.post(
        "/recommend", content=b"{not json", headers={**HEADERS, "content-type": "application/json"}
    )
    assert broken.status_code == 422


def test_serve_picks_the_recommender_app_for_a_recommender_run(tmp_path: Path) -> None:
    from megalith.recommend.run import RecommenderRun
    from megalith.serving import _recommender_run

    planted_interactions(n_users=20, n_items=15, per_user=5).to_csv(tmp_path / "t.csv")
    config = {
        "data": {"source": str(tmp_path / "t.csv")},
        "model": {"arch": "mf", "dim": 4},
        "recommend": {"eval_negatives": 5},
        "train": {"epochs": 1},
    }
    mg.train(config, output_dir=tmp_path / "run")
    found = _recommender_run(tmp_path / "run")
    assert found is not None and isinstance(found[0], RecommenderRun) and found[1] == "torch"
    assert _recommender_run(tmp_path) is None  # no config.yaml: the ordinary path decides
    bundle = _recommender_run(mg.load(tmp_path / "run").export())
    assert bundle is not None and bundle[1] == "numpy"
    client = TestClient(build_recommend_app(bundle[0], ServeSettings(), "numpy"))
    answer = client.post("/recommend", json={"users": [1, "who"], "k": 2})
    assert answer.status_code == 200, answer.text
    assert [entry["known_user"] for entry in answer.json()["recommendations"]] == [True, False]
