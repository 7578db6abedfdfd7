"""The search space: every kind parsed and sampled by Optuna within its bounds, and every bad
space refused with a message naming the key, before any trial runs."""

from __future__ import annotations

from typing import Any

import pytest

import megalith as mg
from megalith.config import load_config
from megalith.errors import ConfigError
from megalith.tuning.space import check_keys, overrides_for, parse_space, section_overrides

optuna = pytest.importorskip("optuna")

CONFIG = {
    "data": {"source": "builtin:iris"},
    "inputs": [
        {"name": "sepal length (cm)", "type": "number"},
        {"name": "kind", "type": "category"},
    ],
    "outputs": [{"name": "species", "type": "category"}],
}
SPACE = {
    "train.optimizer.lr": {"loguniform": [1.0e-4, 1.0e-2]},
    "model.dropout": {"uniform": [0.0, 0.5], "step": 0.1},
    "inputs.1.embedding_dim": {"int": [32, 256], "step": 32},
    "train.batch_size": {"int": [8, 128], "log": True},
    "model.hidden": {"choice": [[64], [128, 64], [256, 128]]},
    "train.optimizer.name": {"choice": ["adam", "adamw", "sgd"]},
}


def test_every_kind_is_sampled_within_its_bounds_and_applies_to_the_config() -> None:
    dimensions = parse_space(SPACE)
    resolved = load_config(CONFIG)[0].model_dump(mode="json")
    check_keys(dimensions, resolved)
    filled = section_overrides(CONFIG, resolved, [d.key for d in dimensions])
    assert [o.split("=")[0] for o in filled] == ["train", "model"]  # left to their defaults
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen: dict[str, set[Any]] = {d.key: set() for d in dimensions}
    for _ in range(40):
        trial = study.ask()
        values = {d.key: d.suggest(trial) for d in dimensions}
        study.tell(trial, 0.0)
        for key, value in values.items():
            seen[key].add(str(value))
        assert 1e-4 <= values["train.optimizer.lr"] <= 1e-2
        assert round(values["model.dropout"] * 10, 6).is_integer()
        assert values["inputs.1.embedding_dim"] % 32 == 0
        assert 8 <= values["train.batch_size"] <= 128
        assert values["model.hidden"] in ([64], [128, 64], [256, 128])  # lists, not JSON text
        cfg, _ = load_config(CONFIG, [*filled, *overrides_for(values)])
        assert cfg.model.hidden == values["model.hidden"]  # type: ignore[union-attr]
        assert cfg.inputs[1].embedding_dim == values["inputs.1.embedding_dim"]  # type: ignore[union-attr]
        assert cfg.train.optimizer.name == values["train.optimizer.name"]
    assert len(seen["model.hidden"]) == 3 and len(seen["train.optimizer.name"]) == 3
    assert len(seen["train.optimizer.lr"]) == 40


def test_the_grid_lists_every_value() -> None:
    by_key = {d.key: d for d in parse_space(SPACE)}
    assert by_key["inputs.1.embedding_dim"].grid() == [32, 64, 96, 128, 160, 192, 224, 256]
    assert by_key["model.dropout"].grid() == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4, 0.5])
    with pytest.raises(ConfigError, match=r"train\.optimizer\.lr: the grid sampler needs"):
        by_key["train.optimizer.lr"].grid()


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"a.b": {"normal": [0, 1]}}, r"a\.b: 'normal'.*; give exactly one of uniform"),
        ({"a.b": {"unifrom": [0, 1]}}, r"a\.b: 'unifrom' \(did you mean 'uniform'\?\)"),
        ({"a.b": {"uniform": [0, 1], "int": [0, 1]}}, r"a\.b: 2 kinds"),
        ({"a.b": {"uniform": [1, 0]}}, r"a\.b: low 1 must be below high 0"),
        ({"a.b": {"uniform": [0]}}, r"a\.b: uniform needs \[low, high\]"),
        ({"a.b": {"uniform": ["x", 1]}}, r"a\.b: uniform needs \[low, high\]"),
        ({"a.b": {"loguniform": [0, 1]}}, r"a\.b: loguniform needs low > 0"),
        ({"a.b": {"int": [1.5, 4]}}, r"a\.b: int bounds must be whole numbers"),
        ({"a.b": {"int": [1, 4], "step": 0.5}}, r"a\.b: an int step must be a whole number"),
        ({"a.b": {"int": [1, 4], "step": 9}}, r"a\.b: step 9 is wider"),
        ({"a.b": {"uniform": [0, 1], "step": -1}}, r"a\.b: step must be a positive number"),
        ({"a.b": {"loguniform": [1, 2], "step": 1}}, r"a\.b: loguniform takes no 'step'"),
        ({"a.b": {"int": [1, 64], "log": True, "step": 2}}, r"a\.b: log is true or false"),
        ({"a.b": {"choice": []}}, r"a\.b: choice needs a non-empty list"),
        ({"a.b": [1, 2]}, r"a\.b: give one distribution"),
        ({}, r"space: a search space is a mapping"),
        ([1], r"space: a search space is a mapping"),
    ],
)
def test_a_bad_space_is_refused_naming_the_key(space: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_space(space)


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("train.optimizer.weight_decy", r"weight_decy: the config has no key .*'weight_decay'"),
        ("model.hiden", r"model\.hiden: the config has no key model\.hiden"),
        ("inputs.5.embedding_dim", r"inputs\.5 is not an index of a list of 2 items"),
        ("inputs.1.embedding_size", r"the config has no key inputs\.1\.embedding_size"),
    ],
)
def test_a_key_the_config_does_not_have_is_refused(key: str, message: str) -> None:
    resolved = load_config(CONFIG)[0].model_dump(mode="json")
    with pytest.raises(ConfigError, match=message):
        check_keys(parse_space({key: {"choice": [1, 2]}}), resolved)


def test_a_key_under_a_section_left_out_is_allowed() -> None:
    resolved = load_config(CONFIG)[0].model_dump(mode="json")
    assert resolved["train"]["early_stop"] is None
    check_keys(parse_space({"train.early_stop.patience": {"int": [2, 6]}}), resolved)


def test_a_metric_no_trial_reports_is_refused_before_any_trial(tmp_path: Any) -> None:
    from megalith.tuning.study import _checked_metric

    cfg, _ = load_config(CONFIG)
    assert _checked_metric("val/accuracy", cfg) == "val/accuracy"
    with pytest.raises(ConfigError, match=r"reports it \(did you mean .val/accuracy"):
        _checked_metric("val/acuracy", cfg)
    # and through the tuner: nothing is trained or written
    with pytest.raises(ConfigError, match="val/bogus"):
        mg.tune(CONFIG, {"train.optimizer.lr": {"loguniform": [1e-4, 1e-2]}},
                study_dir=tmp_path / "study", metric="val/bogus", trials=1)  # fmt: skip
    assert not (tmp_path / "study").exists()


def test_a_space_file_that_is_empty_or_missing_is_called_a_space_file(tmp_path: Any) -> None:
    from megalith.tuning.space import read_space

    (tmp_path / "empty.yaml").write_text("")
    with pytest.raises(ConfigError, match=r"empty\.yaml: a search space is a YAML mapping"):
        read_space(tmp_path / "empty.yaml")
    with pytest.raises(ConfigError, match="search space file not found"):
        read_space(tmp_path / "nope.yaml")
