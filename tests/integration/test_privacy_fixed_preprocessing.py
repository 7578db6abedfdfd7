"""train.privacy.preprocessing fixed: nothing is fitted on the private train rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import make_table, run_cli

import megalith as mg
from megalith.data.features.category import CategoryInput, CategoryOutput
from megalith.data.features.number import NumberInput
from megalith.data.features.text import TextInput
from megalith.data.preprocess import Preprocessor
from megalith.errors import ConfigError
from megalith.training.fixed_preprocessing import fixed_preprocessor

INPUTS: list[dict[str, Any]] = [
    {"name": "size", "type": "number"},
    {"name": "color", "type": "category"},
    {"name": "member", "type": "binary"},
]
OUTPUTS: list[dict[str, Any]] = [{"name": "label", "type": "category"}]
GIVEN: dict[str, dict[str, Any]] = {
    "size": {"mean": 10.0, "std": 3.0, "min": 0.0, "max": 20.0},
    "color": {"vocabulary": ["red", "green", "blue", "violet"]},
    "member": {"values": ["no", "yes"], "mode": 0.0},
    "label": {"classes": ["high", "low", "mid"]},
}


def _config(csv: Path, **privacy: Any) -> dict[str, Any]:
    return {
        "name": "fixed",
        "data": {"source": str(csv), "split": {"val": 0.2, "test": 0.2}},
        "inputs": INPUTS,
        "outputs": OUTPUTS,
        "model": {"arch": "mlp", "hidden": [16]},
        "train": {
            "epochs": 1,
            "batch_size": 64,
            "baselines": False,
            "privacy": {"epsilon": 8.0, "accountant": "rdp", "preprocessing": "fixed", **privacy},
        },
    }


def _fixed_states(run_dir: Path) -> dict[str, Any]:
    saved = json.loads((run_dir / "preprocessor.json").read_text())
    return {e["config"]["name"]: e["state"] for e in [*saved["inputs"], *saved["outputs"]]}


@pytest.mark.slow
def test_fixed_states_are_the_given_ones_whatever_the_train_rows(tmp_path: Path) -> None:
    states = []
    for seed in (0, 1):  # two different private tables
        csv = tmp_path / f"table{seed}.csv"
        make_table(rows=200, seed=seed).to_csv(csv, index=False)
        run = mg.train(_config(csv, fixed=GIVEN), output_dir=tmp_path / f"run{seed}")
        states.append(_fixed_states(tmp_path / f"run{seed}"))
        privacy = run.metrics["privacy"]
        assert privacy["fitted_from_private_rows"] == [] and privacy["not_covered"] is None
        assert privacy["preprocessing_fitted_on"] == "given in the config (train.privacy.fixed)"
    assert states[0] == states[1]
    assert {name: states[0][name] for name in ("size", "color", "member")} == {
        name: GIVEN[name] for name in ("size", "color", "member")
    }
    assert states[0]["label"]["classes"] == ["high", "low", "mid"]
    assert states[0]["label"]["counts"] == [0, 0, 0]  # no class counts from private rows


def test_fixed_preprocessor_builds_the_given_states_and_hash_text_needs_none() -> None:
    text = TextInput(name="t", tokenizer="hash", vocab_size=260, max_length=12, ngrams=2)
    given = {"size": GIVEN["size"], "label": GIVEN["label"]}
    built = fixed_preprocessor(
        [NumberInput(name="size"), text], [CategoryOutput(name="label")], given
    )
    json_form = built.to_json()
    assert json_form["inputs"][0]["state"] == GIVEN["size"]
    assert json_form["inputs"][1]["state"] == {
        "tokenizer": {"kind": "hash", "vocab_size": 260, "lowercase": True, "ngrams": 2},
        "max_length": 12,
    }
    again = Preprocessor.from_json(json.loads(json.dumps(json_form)))
    assert again.inputs[1].spec().shape == (12,)


def test_a_column_without_a_given_state_is_a_config_error_naming_the_key() -> None:
    given = {"size": GIVEN["size"], "label": GIVEN["label"]}
    with pytest.raises(
        ConfigError, match=r"input 'color' \(category\).*train\.privacy\.fixed\.color"
    ):
        fixed_preprocessor(
            [NumberInput(name="size"), CategoryInput(name="color")],
            [CategoryOutput(name="label")],
            given,
        )
    idf = TextInput(name="t", tokenizer="hash", max_length=9, idf=True)  # idf: fitted on rows
    with pytest.raises(ConfigError, match=r"input 't' \(text\).*fixed\.t"):
        fixed_preprocessor([idf], [], {})
    with pytest.raises(ConfigError, match=r"text\).*tokenizer: hash with a max_length"):
        fixed_preprocessor(
            [TextInput(name="t", tokenizer="hash")],
            [CategoryOutput(name="label")],
            {"label": GIVEN["label"]},
        )
    with pytest.raises(ConfigError, match=r"train\.privacy\.fixed\.size: .*'min'"):
        fixed_preprocessor([NumberInput(name="size")], [], {"size": {"mean": 1.0, "std": 1.0}})
    with pytest.raises(ConfigError, match=r"'colour' is not an input or output"):
        fixed_preprocessor([NumberInput(name="size")], [], {"size": GIVEN["size"], "colour": {}})


def test_cli_refuses_a_missing_state_before_the_run_directory(tmp_path: Path) -> None:
    csv = tmp_path / "table.csv"
    make_table(rows=60).to_csv(csv, index=False)
    config = _config(csv, fixed={k: v for k, v in GIVEN.items() if k != "size"})
    (tmp_path / "fixed.yaml").write_text(json.dumps(config))
    outcome = run_cli("train", tmp_path / "fixed.yaml", "--output-dir", tmp_path / "run")
    assert outcome.code != 0 and "Traceback" not in outcome.stderr
    assert "train.privacy.fixed.size" in outcome.stderr
    assert not (tmp_path / "run").exists()


def test_fixed_states_without_preprocessing_fixed_are_refused(tmp_path: Path) -> None:
    config = _config(tmp_path / "x.csv", fixed=GIVEN, preprocessing="fitted")
    with pytest.raises(ConfigError, match="read only with preprocessing: fixed"):
        mg.train(config, output_dir=tmp_path / "run")
