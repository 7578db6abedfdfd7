"""Config parsing: overrides, defaults, and one clear line per mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from megalith.config import Config, apply_override, config_to_yaml, load_config, validate_config
from megalith.errors import ConfigError

MINIMAL = {
    "data": {"source": "table.csv"},
    "inputs": [{"name": "x", "type": "number"}],
    "outputs": [{"name": "y", "type": "category"}],
}


def _config(**changes: object) -> dict:
    data = {**MINIMAL, **changes}
    return data


def test_minimal_config_gets_defaults() -> None:
    config = validate_config(MINIMAL)
    assert config.model.arch == "mlp"
    assert config.train.optimizer.name == "adamw"
    assert config.data.split.val == 0.1


def test_split_may_name_a_column() -> None:
    config = validate_config(_config(data={"source": "t.csv", "split": "fold"}))
    assert config.data.split.column == "fold"


def test_unknown_key_suggests_the_close_one() -> None:
    with pytest.raises(
        ConfigError, match=r"train\.epoch: unknown key 'epoch'.*did you mean 'epochs'"
    ):
        validate_config(_config(train={"epoch": 3}))


def test_unknown_key_inside_tagged_union_suggests_member_field() -> None:
    with pytest.raises(ConfigError, match=r"did you mean 'channels'"):
        validate_config(_config(model={"arch": "cnn", "channel": [8]}))


def test_unknown_key_in_list_item() -> None:
    with pytest.raises(
        ConfigError,
        match=r"inputs\.0\.normalise: unknown key.*in inputs\.0 .*did you mean 'normalize'",
    ):
        validate_config(_config(inputs=[{"name": "x", "type": "number", "normalise": "none"}]))


def test_unknown_arch_lists_choices() -> None:
    with pytest.raises(ConfigError, match=r"model\.arch: unknown 'cnm'.*did you mean 'cnn'"):
        validate_config(_config(model={"arch": "cnm"}))


def test_wrong_type_and_range_name_the_path() -> None:
    with pytest.raises(ConfigError, match=r"train\.epochs: .*greater than 0 \(got 0\)"):
        validate_config(_config(train={"epochs": 0}))
    with pytest.raises(ConfigError, match=r"train\.batch_size: .*integer.*'many'"):
        validate_config(_config(train={"batch_size": "many"}))


def test_missing_type_lists_the_types() -> None:
    with pytest.raises(ConfigError, match=r"inputs\.0: needs a 'type' key \(one of number, binary"):
        validate_config(_config(inputs=[{"name": "x"}]))


def test_missing_required_key() -> None:
    with pytest.raises(ConfigError, match=r"data: required key is missing"):
        validate_config({"inputs": MINIMAL["inputs"], "outputs": MINIMAL["outputs"]})


def test_duplicate_and_overlapping_columns_are_refused() -> None:
    with pytest.raises(ConfigError, match="listed twice: x"):
        validate_config(_config(inputs=[{"name": "x", "type": "number"}] * 2))
    with pytest.raises(ConfigError, match="both input and output: y"):
        validate_config(_config(inputs=[{"name": "y", "type": "number"}]))


def test_split_fractions_must_leave_train_rows() -> None:
    with pytest.raises(ConfigError, match="val \\+ test must be < 1"):
        validate_config(_config(data={"source": "t.csv", "split": {"val": 0.5, "test": 0.5}}))


def test_overrides_parse_values_as_yaml() -> None:
    data = {"train": {"epochs": 5}, "inputs": [{"name": "a"}]}
    apply_override(data, "train.epochs=3")
    apply_override(data, "model.channels=[8, 16]")
    apply_override(data, "inputs.0.type=category")
    apply_override(data, "name=my-run")
    assert data["train"]["epochs"] == 3
    assert data["model"]["channels"] == [8, 16]
    assert data["inputs"][0]["type"] == "category"
    assert data["name"] == "my-run"


@pytest.mark.parametrize("bad", ["epochs", "=3", "inputs.5.type=number"])
def test_malformed_overrides(bad: str) -> None:
    with pytest.raises(ConfigError, match="--set"):
        apply_override({"inputs": [{}]}, bad)


def test_yaml_file_errors_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\ntrain:\n  epochs: [1\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml:.*line \d+.*invalid YAML"):
        load_config(path)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")
    path.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="must be a YAML mapping"):
        load_config(path)


def test_resolved_yaml_round_trips(tmp_path: Path) -> None:
    config, base = load_config(MINIMAL, ["train.epochs=2"])
    path = tmp_path / "config.yaml"
    path.write_text(config_to_yaml(config))
    again, again_base = load_config(path)
    assert again == config
    assert again_base == tmp_path
    assert base == Path.cwd()


def test_json_schema_describes_fields() -> None:
    schema = Config.model_json_schema()
    epochs = schema["$defs"]["TrainConfig"]["properties"]["epochs"]
    assert "Passes over the train split" in epochs["description"]


TEXT_OUT = {"name": "text", "type": "text"}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"model": {"arch": "gpt"}}, "model.arch gpt is a language model of one text column"),
        (
            {"model": {"arch": "gpt"}, "inputs": [], "outputs": [{"name": "y", "type": "number"}]},
            "model.arch gpt is a language model",
        ),
        ({"outputs": [TEXT_OUT]}, "a text output is written by a language model or a seq2seq"),
        ({"model": {"arch": "seq2seq"}}, "seq2seq reads one text input and writes one text"),
        ({"inputs": []}, "inputs: give at least one input column"),
    ],
)
def test_models_check_their_inputs_and_outputs(changes: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        validate_config(_config(**changes), origin="cfg.yaml")


def test_language_model_and_seq2seq_configs_validate() -> None:
    gpt = validate_config(
        _config(inputs=[], outputs=[TEXT_OUT], model={"arch": "gpt", "context": 64}), origin="c"
    )
    assert gpt.model.arch == "gpt" and gpt.inputs == []
    seq2seq = validate_config(
        _config(
            inputs=[{"name": "src", "type": "text", "tokenizer": "char"}],
            outputs=[TEXT_OUT],
            model={"arch": "seq2seq", "beam_size": 2},
        ),
        origin="c",
    )
    assert seq2seq.model.arch == "seq2seq"


def test_bpe_needs_room_for_every_byte() -> None:
    with pytest.raises(ConfigError, match="at least 260 with the bpe tokenizer"):
        validate_config(
            _config(inputs=[{"name": "t", "type": "text", "tokenizer": "bpe", "vocab_size": 100}]),
            origin="c",
        )


@pytest.mark.parametrize(
    ("key", "value"),
    [("model.hidden", "[-5]"), ("model.hidden", "[0]"), ("model.channels", "[-4]")],
)
def test_a_layer_width_must_be_positive(key: str, value: str) -> None:
    arch = "cnn" if key == "model.channels" else "mlp"
    config = {
        "data": {"source": "builtin:digits"},
        "inputs": [{"name": "image", "type": "image"}],
        "outputs": [{"name": "label", "type": "category"}],
        "model": {"arch": arch},
    }
    with pytest.raises(ConfigError, match=rf"{key}\.0: input should be greater than 0"):
        load_config(config, [f"{key}={value}"])
