"""Side tables: user / item features joined by id, fed to the two_tower's towers; new users
and items answered from their features; bad side tables refused before the run exists."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import megalith as mg
from megalith.errors import ConfigError, DataError
from megalith.recommend.synthetic import planted_interactions, planted_side_tables
from megalith.runtime.recommender import load_recommender_bundle

SIZES = {"n_users": 240, "n_items": 150, "dim": 8, "strength": 3.0, "seed": 5}
USER_FEATURES = [
    {"name": "likes", "type": "set", "separator": "|"},
    {"name": "age", "type": "number"},
]
ITEM_FEATURES = [
    {"name": "genres", "type": "set", "separator": "|"},
    {"name": "year", "type": "number"},
    {"name": "kind", "type": "category"},
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("side")
    planted_interactions(per_user=20, **SIZES).to_csv(path / "ratings.csv", index=False)
    users, items = planted_side_tables(**SIZES)
    new_item = items.iloc[[0]].assign(item=9999)  # in the side table, never interacted with
    users.to_csv(path / "users.csv", index=False)
    pd.concat([items, new_item]).to_csv(path / "items.csv", index=False)
    return path


def _config(folder: Path, **recommend: Any) -> dict[str, Any]:
    return {
        "data": {
            "source": str(folder / "ratings.csv"),
            "users": str(folder / "users.csv"),
            "items": str(folder / "items.csv"),
        },
        "model": {"arch": "two_tower", "dim": 16},
        "recommend": {
            "timestamp": "timestamp",
            "loss": "softmax",
            "eval_negatives": 50,
            "user_features": USER_FEATURES,
            "item_features": ITEM_FEATURES,
            **recommend,
        },
        "train": {"epochs": 10, "batch_size": 256, "optimizer": {"lr": 0.01}},
    }


@pytest.fixture(scope="module")
def cold_run(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> mg.Run:
    output = tmp_path_factory.mktemp("cold") / "run"
    return mg.train(_config(folder, split="cold_users"), output_dir=output)


def test_new_users_are_answered_from_their_features_better_than_most_popular(
    cold_run: mg.Run,
) -> None:
    test, popular = cold_run.metrics["test"], cold_run.metrics["recommender_baselines"]
    assert test["users"] == 48  # 20% of 240 users, none of them met in training
    assert test["sampled_hr@10"] > popular["most_popular"]["sampled_hr@10"] + 0.1
    assert test["ndcg@10"] > popular["most_popular"]["ndcg@10"] * 1.2


def test_recommend_flags_cold_start_and_reads_new_users_features(
    cold_run: mg.Run, folder: Path
) -> None:
    users = pd.read_csv(folder / "users.csv")
    newcomers = users.iloc[:2].assign(user=["new-a", "new-b"])
    newcomers.loc[1, "likes"] = users.loc[7, "likes"]
    table = cold_run.recommend(["new-a", "new-b", "nobody"], k=5, user_features=newcomers)
    by_user = {user: rows for user, rows in table.groupby("user")}
    assert not table["known_user"].any()
    assert by_user["new-a"]["cold_start"].all() and by_user["new-b"]["cold_start"].all()
    assert not by_user["nobody"]["cold_start"].any()  # no features: the most popular items
    assert by_user["new-a"]["item"].tolist() != by_user["nobody"]["item"].tolist()
    # a held-out user's own row and the same features given anew get the same answer
    state = cold_run.state
    cold = state.user_ids[int(np.flatnonzero(~state.has_history("user"))[0])]
    twin = users[users["user"].astype(str) == cold].assign(user="twin")
    own = cold_run.recommend([cold], k=5, exclude_seen=False)
    given = cold_run.recommend(["twin"], k=5, user_features=twin)
    assert own["cold_start"].all() and own["known_user"].all()
    assert own["item"].tolist() == given["item"].tolist()
    np.testing.assert_allclose(own["score"], given["score"], rtol=1e-5)
    with pytest.raises(DataError, match="no column 'user'"):
        cold_run.recommend(["new-a"], user_features=newcomers.rename(columns={"user": "id"}))


def test_a_new_item_with_features_is_in_the_catalogue_and_ranked(cold_run: mg.Run) -> None:
    assert "9999" in cold_run.item_ids
    state = cold_run.state
    new, twin = state.item_ids.index("9999"), state.item_ids.index("1")
    assert not state.has_history("item")[new]
    scores = cold_run.scores_for(list(range(40))).numpy()
    assert scores[:, new].std() > 0.1 * scores.std()  # personal, not one constant
    assert np.corrcoef(scores[:, new], scores[:, twin])[0, 1] > 0.5  # same features, same tastes


def test_the_run_reloads_and_exports_the_same_answers(cold_run: mg.Run) -> None:
    assert (cold_run.path / "user_features.json").exists()
    assert (cold_run.path / "item_features.json").exists()
    loaded = mg.load(cold_run.path)
    users = [*cold_run.user_ids[:5], "nobody"]
    expected = cold_run.recommend(users, k=4)
    pd.testing.assert_frame_equal(loaded.recommend(users, k=4), expected)
    bundle = load_recommender_bundle(loaded.export(overwrite=True))
    found = bundle.recommend(users, k=4)
    columns = ["user", "rank", "item", "known_user", "cold_start"]
    pd.testing.assert_frame_equal(found[columns], expected[columns])


def test_warm_two_tower_with_side_features_trains(folder: Path, tmp_path: Path) -> None:
    run = mg.train(_config(folder), output_dir=tmp_path / "run")
    test = run.metrics["test"]
    assert (
        test["sampled_hr@10"]
        > run.metrics["recommender_baselines"]["most_popular"]["sampled_hr@10"]
    )


def _write(folder: Path, name: str, text: str) -> str:
    (folder / name).write_text(text, encoding="utf-8")
    return str(folder / name)


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ("id,genres\n1,a\n", r"items.csv: no column 'item' \(the recommend.item id"),
        (
            "item,genres\n1,a\n2,b\n1,c\n",
            "items.csv: rows 1 and 3, column 'item': the item '1' appears twice",
        ),
        ("item,genres\n1,a\n,b\n", "items.csv: row 2, column 'item': the id is missing"),
        (
            "item,genres\n1,a|b\n",
            r"items.csv: 2 item id\(s\) of the interactions have no row here \(column 'item'\), "
            "e.g. '2', '3'",
        ),
    ],
)
def test_bad_side_tables_are_refused_before_the_run_exists(
    tmp_path: Path, items: str, message: str
) -> None:
    source = _write(tmp_path, "i.csv", "user,item\n1,1\n1,2\n2,1\n2,3\n")
    config = {
        "data": {"source": source, "items": _write(tmp_path, "items.csv", items)},
        "model": {"arch": "two_tower", "dim": 4},
        "recommend": {"item_features": [{"name": "genres", "type": "set", "separator": "|"}]},
    }
    with pytest.raises(DataError, match=message):
        mg.train(config, output_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_side_settings_must_match_and_need_a_two_tower(tmp_path: Path) -> None:
    source = _write(tmp_path, "i.csv", "user,item\n1,1\n1,2\n2,1\n2,3\n")
    items = _write(tmp_path, "items.csv", "item,genres\n1,a\n2,b\n3,a|b\n")
    features = [{"name": "genres", "type": "set", "separator": "|"}]
    cases = [
        ({"items": items}, "two_tower", {}, "recommend.item_features is empty"),
        ({}, "two_tower", {"item_features": features}, "needs data.items"),
        ({"items": items}, "mf", {"item_features": features}, "read by model.arch two_tower"),
    ]
    for data, arch, recommend, message in cases:
        config = {
            "data": {"source": source, **data},
            "model": {"arch": arch, "dim": 4},
            "recommend": recommend,
        }
        with pytest.raises(ConfigError, match=message):
            mg.train(config, output_dir=tmp_path / "run")
        assert not (tmp_path / "run").exists()


def test_init_finds_side_tables_next_to_the_interactions(folder: Path, tmp_path: Path) -> None:
    import yaml

    from megalith.config import validate_config
    from megalith.recommend.init import recommender_init_text
    from megalith.recommend.train import prepare_state

    ratings = pd.read_csv(folder / "ratings.csv").rename(columns={"item": "movie_id"})
    ratings.to_csv(tmp_path / "ratings.csv", index=False)
    movies = pd.DataFrame(
        {
            "movie_id": range(1, 151),
            "title": [f"Film number {i}" for i in range(1, 151)],
            "genres": ["Science Fiction|Drama", "Comedy", "Drama|Comedy"] * 50,
            "year": np.arange(150) % 40 + 1970,
        }
    )
    movies.to_csv(tmp_path / "movies.csv", index=False)
    (tmp_path / "users.csv").write_text("id,age\n1,30\n", encoding="utf-8")  # no 'user' column
    text = recommender_init_text(
        str(tmp_path / "ratings.csv"),
        name=None,
        source="ratings.csv",
        written=lambda p: "x/" + Path(p).name,
    )
    assert text is not None
    config = yaml.safe_load(text)
    assert config["data"] == {"source": "ratings.csv", "items": "x/movies.csv"}
    assert config["model"]["arch"] == "two_tower"
    features = {f["name"]: f for f in config["recommend"]["item_features"]}
    assert features["genres"] == {"name": "genres", "type": "set", "separator": "|"}
    assert features["year"]["type"] == "number" and "movie_id" not in features
    assert "user_features" not in config["recommend"]
    config["data"] = {
        "source": str(tmp_path / "ratings.csv"),
        "items": str(tmp_path / "movies.csv"),
    }
    state = prepare_state(validate_config(config))
    genres = state.sides["item"].preprocessor.inputs[[f for f in features].index("genres")]
    assert "Science Fiction" in genres.vocabulary  # split on '|' only


def test_the_cli_reads_new_users_features(cold_run: mg.Run, folder: Path, tmp_path: Path) -> None:
    from conftest import run_cli

    users = pd.read_csv(folder / "users.csv")
    users.iloc[:1].assign(user="newcomer").to_csv(tmp_path / "new.csv", index=False)
    outcome = run_cli(
        "recommend",
        cold_run.path,
        "--users",
        "newcomer,nobody",
        "--k",
        "3",
        "--user-features",
        tmp_path / "new.csv",
    )
    assert outcome.code == 0, outcome.stderr
    table = pd.read_csv(io.StringIO(outcome.stdout))
    assert table.groupby("user")["cold_start"].all().to_dict() == {
        "newcomer": True,
        "nobody": False,
    }
    bundle = cold_run.path / "bundle"
    if not bundle.exists():
        cold_run.export()
    refused = run_cli(
        "recommend", bundle, "--users", "newcomer", "--user-features", tmp_path / "new.csv"
    )
    assert refused.code != 0 and "give the run directory" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_the_server_answers_new_users_from_the_features_in_the_request(
    cold_run: mg.Run, folder: Path
) -> None:
    from fastapi.testclient import TestClient

    from megalith.serving.app import ServeSettings
    from megalith.serving.recommend_app import build_recommend_app

    row = pd.read_csv(folder / "users.csv").iloc[3]
    features = {"likes": str(row["likes"]), "age": float(row["age"])}
    client = TestClient(build_recommend_app(cold_run, ServeSettings(max_rows=5), "torch"))
    body = {"users": ["fresh", "nobody"], "k": 4, "user_features": {"fresh": features}}
    answer = client.post("/recommend", json=body)
    assert answer.status_code == 200, answer.text
    fresh, nobody = answer.json()["recommendations"]
    assert fresh["cold_start"] and not fresh["known_user"] and not nobody["cold_start"]
    frame = pd.DataFrame([{"user": "fresh", **features}])
    expected = cold_run.recommend(["fresh"], k=4, user_features=frame)["item"].tolist()
    assert [entry["item"] for entry in fresh["items"]] == expected
    bad = client.post("/recommend", json={**body, "user_features": {"fresh": {"age": [1]}}})
    assert bad.status_code == 422 and "user_features" in bad.text
    bundle = load_recommender_bundle(cold_run.export(overwrite=True))
    numpy_client = TestClient(build_recommend_app(bundle, ServeSettings(), "numpy"))
    refused = numpy_client.post("/recommend", json=body)
    assert refused.status_code == 422 and "reads no user features" in refused.text


def test_side_tables_belong_to_recommenders() -> None:
    from megalith.config import validate_config

    config = {
        "data": {"source": "t.csv", "items": "items.csv"},
        "inputs": [{"name": "x", "type": "number"}],
        "outputs": [{"name": "y", "type": "number"}],
    }
    with pytest.raises(ConfigError, match=r"data\.items / data\.users are a recommender's"):
        validate_config(config)
