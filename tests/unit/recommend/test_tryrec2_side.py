"""Side tables met as a new user would: a resume after a side table's values changed, and new
users' features that name one user twice, miss a column, or hold a number too large to encode."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import megalith as mg
from megalith.config import validate_config
from megalith.errors import ConfigError, DataError, RunError
from megalith.recommend.synthetic import planted_interactions, planted_side_tables
from megalith.runtime.recommender import RECOMMEND_COLUMNS

SIZES = {"n_users": 30, "n_items": 25, "dim": 4, "seed": 2}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tryrec2")
    planted_interactions(per_user=6, **SIZES).to_csv(path / "ratings.csv", index=False)
    users, items = planted_side_tables(**SIZES)
    users.to_csv(path / "users.csv", index=False)
    items.to_csv(path / "items.csv", index=False)
    return path


def _config(folder: Path) -> dict[str, Any]:
    return {
        "data": {
            "source": str(folder / "ratings.csv"),
            "users": str(folder / "users.csv"),
            "items": str(folder / "items.csv"),
        },
        "model": {"arch": "two_tower", "dim": 8},
        "recommend": {
            "timestamp": "timestamp",
            "loss": "softmax",
            "eval_negatives": 10,
            "user_features": [{"name": "age", "type": "number"}],
            "item_features": [{"name": "genres", "type": "set", "separator": "|"}],
        },
        "train": {"epochs": 1, "batch_size": 64},
    }


@pytest.fixture(scope="module")
def run(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> mg.Run:
    return mg.train(_config(folder), output_dir=tmp_path_factory.mktemp("run") / "run")


def test_a_resume_after_a_side_tables_values_changed_is_refused(
    folder: Path, tmp_path: Path
) -> None:
    config = _config(folder)
    users = pd.read_csv(folder / "users.csv")
    users.to_csv(tmp_path / "users.csv", index=False)
    config["data"]["users"] = str(tmp_path / "users.csv")
    mg.train(config, output_dir=tmp_path / "run")
    changed = users.copy()
    changed.loc[3, "age"] += 10.0  # the same ids: only a value differs
    changed.to_csv(tmp_path / "users.csv", index=False)
    with pytest.raises(RunError, match="side tables changed"):
        mg.train(resume=tmp_path / "run", overrides=["train.epochs=2"])
    users.to_csv(tmp_path / "users.csv", index=False)  # restored: the resume goes on
    resumed = mg.train(resume=tmp_path / "run", overrides=["train.epochs=2"])
    assert resumed.metrics["training"]["epochs"] == 2


def test_new_users_features_naming_a_user_twice_are_refused(run: mg.Run) -> None:
    twice = pd.DataFrame({"user": ["new", "new"], "age": [20, 60]})
    with pytest.raises(DataError, match=r"rows 1 and 2, column 'user': the user 'new'"):
        run.recommend(["new"], user_features=twice)


def test_a_number_too_large_for_float32_is_refused_not_ranked_as_nothing(run: mg.Run) -> None:
    huge = pd.DataFrame({"user": ["new"], "age": [1e300]})
    with pytest.raises(DataError, match=r"column 'age', user 'new': the value is too large"):
        run.recommend(["new"], user_features=huge)
    with pytest.raises(DataError, match=r"'age' not found.*user tower of .* reads"):
        run.recommend(["new"], user_features=pd.DataFrame({"user": ["new"]}))


def test_the_server_answers_bad_features_with_a_422_naming_them(
    run: mg.Run,
) -> None:
    from fastapi.testclient import TestClient

    from megalith.serving.app import ServeSettings
    from megalith.serving.recommend_app import build_recommend_app

    app = build_recommend_app(run, ServeSettings(max_rows=5), "torch")
    client = TestClient(app, raise_server_exceptions=False)
    assert client.get("/metadata").json()["user_features"] == ["age"]
    body: dict[str, Any] = {"users": ["a", "b"], "k": 3}
    huge = client.post("/recommend", json=body | {"user_features": {"a": {"age": 1e300}}})
    assert huge.status_code == 422 and "too large" in huge.text
    # a key missing for one user is refused as it is for another, never read as empty
    partial = {"a": {"age": 30}, "b": {}}
    missing = client.post("/recommend", json=body | {"user_features": partial})
    assert missing.status_code == 422 and "user_features.b: no 'age'" in missing.text
    empty = client.post("/recommend", json=body | {"user_features": {}})
    assert empty.status_code == 200, empty.text
    named = client.post("/recommend", json=body | {"user_features": {"a": {"age": "old"}}})
    assert named.status_code == 422 and "row 'a'" in named.text


class _EverythingSeen:
    """A recommender whose one user has seen every item: no row to answer with."""

    user_ids = ["u"]
    item_ids = ["i"]

    def recommend(self, users: Any, k: int = 10, *, exclude_seen: bool = True) -> pd.DataFrame:
        return pd.DataFrame(columns=RECOMMEND_COLUMNS)


def test_a_user_with_nothing_left_to_rank_gets_an_empty_list_not_a_500() -> None:
    from fastapi.testclient import TestClient

    from megalith.serving.app import ServeSettings
    from megalith.serving.recommend_app import build_recommend_app

    app = build_recommend_app(_EverythingSeen(), ServeSettings(), "numpy")
    client = TestClient(app, raise_server_exceptions=False)
    answer = client.post("/recommend", json={"users": ["u", "v"], "k": 3})
    assert answer.status_code == 200, answer.text
    assert answer.json()["recommendations"] == [
        {"user": "u", "known_user": True, "cold_start": False, "items": []},
        {"user": "v", "known_user": False, "cold_start": False, "items": []},
    ]


def test_a_recommender_with_train_privacy_is_refused_not_trained_in_the_clear(
    folder: Path,
) -> None:
    config = _config(folder)
    config["train"]["privacy"] = {"epsilon": 3}
    with pytest.raises(ConfigError, match=r"train\.privacy: model\.arch two_tower"):
        validate_config(config)


def test_a_resume_after_a_rating_changed_is_refused_for_explicit_feedback(
    folder: Path, tmp_path: Path
) -> None:
    ratings = pd.read_csv(folder / "ratings.csv").assign(rating=lambda f: f["user"] % 5 + 1)
    ratings.to_csv(tmp_path / "ratings.csv", index=False)
    config: dict[str, Any] = {
        "data": {"source": str(tmp_path / "ratings.csv")},
        "model": {"arch": "mf", "dim": 4},
        "recommend": {"rating": "rating", "feedback": "explicit", "eval_negatives": 10},
        "train": {"epochs": 1, "batch_size": 64},
    }
    mg.train(config, output_dir=tmp_path / "run")
    changed = ratings.copy()
    changed.loc[0, "rating"] = changed.loc[0, "rating"] % 5 + 1  # the same pairs, one rating
    changed.to_csv(tmp_path / "ratings.csv", index=False)
    with pytest.raises(RunError, match="ids, ratings or side tables"):
        mg.train(resume=tmp_path / "run", overrides=["train.epochs=2"])
    ratings.to_csv(tmp_path / "ratings.csv", index=False)
    assert mg.train(resume=tmp_path / "run", overrides=["train.epochs=2"]).metrics["test"]["rmse"]


def test_a_missing_side_table_or_features_file_is_named_by_its_key(
    folder: Path, tmp_path: Path, run: mg.Run
) -> None:
    from conftest import run_cli

    config = _config(folder)
    config["data"]["users"] = str(tmp_path / "absent.csv")
    with pytest.raises(DataError, match=r"data\.users not found: .*absent\.csv; check data\.users"):
        mg.train(config, output_dir=tmp_path / "run")
    outcome = run_cli("recommend", run.path, "--users", "x", "--user-features", tmp_path / "no.csv")
    assert outcome.code == 2 and "--user-features: " in outcome.stderr
    assert "Traceback" not in outcome.stderr


def test_a_feature_column_absent_from_its_side_table_names_the_feature_list(
    folder: Path, tmp_path: Path
) -> None:
    config = _config(folder)
    config["recommend"]["user_features"] = [{"name": "agee", "type": "number"}]
    with pytest.raises(DataError, match=r"no column 'agee'.*listed in recommend\.user_features"):
        mg.train(config, output_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_side_feature_listed_twice_names_its_list(folder: Path) -> None:
    config = _config(folder)
    config["recommend"]["user_features"] = [
        {"name": "age", "type": "number"},
        {"name": "age", "type": "category"},
    ]
    with pytest.raises(ConfigError, match=r"recommend\.user_features: column\(s\) 'age' listed"):
        validate_config(config)


def test_init_says_why_a_side_table_next_to_the_interactions_was_passed_over(
    folder: Path, tmp_path: Path
) -> None:
    from megalith.recommend.init import recommender_init_text

    pd.read_csv(folder / "ratings.csv").to_csv(tmp_path / "ratings.csv", index=False)
    items = pd.read_csv(folder / "items.csv").rename(columns={"item": "movie_id"})
    items.to_csv(tmp_path / "items.csv", index=False)
    text = recommender_init_text(
        str(tmp_path / "ratings.csv"), name="r", source=str(tmp_path / "ratings.csv")
    )
    assert text is not None and "items:" not in text
    assert "# items.csv: not read as item features: it has no column 'item'" in text
