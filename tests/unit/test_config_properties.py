"""Property-based tests of config parsing: any input gives a Config or a ConfigError."""

from __future__ import annotations

import copy
import string
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from megalith.config import Config, config_to_yaml, load_config, validate_config
from megalith.errors import ConfigError

FAST = settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
VALID: dict[str, Any] = {
    "data": {"source": "table.csv"},
    "inputs": [{"name": "x", "type": "number"}, {"name": "c", "type": "category"}],
    "outputs": [{"name": "y", "type": "category"}],
}
# real key names (so overrides often reach deep into the config), indices and noise
SEGMENTS = st.one_of(
    st.sampled_from(
        [
            "data",
            "source",
            "split",
            "val",
            "test",
            "column",
            "inputs",
            "outputs",
            "name",
            "type",
            "model",
            "arch",
            "hidden",
            "channels",
            "train",
            "epochs",
            "batch_size",
            "optimizer",
            "lr",
            "early_stop",
            "metric",
            "seed",
            "max_pixels",
            "0",
            "1",
            "7",
        ]
    ),
    st.text(max_size=6),
)
VALUES = st.one_of(
    st.sampled_from(
        [
            "3",
            "-1",
            "0.5",
            "1e9",
            "[1, 2]",
            "{a: 1}",
            "null",
            "true",
            "cnn",
            "number",
            "",
            "2020-13-45",
            "[1,",
            "!!python/name:os.system",
            "*alias",
            "'quoted'",
            "{",
            "nan",
        ]
    ),
    st.text(max_size=12),
)


def _outcome(load: Any) -> Config | None:
    """Run `load()`; a ConfigError is a fine outcome, any other exception fails the test."""
    try:
        config = load()
    except ConfigError as error:
        assert str(error).strip(), "an empty error message"
        return None
    assert isinstance(config, Config)
    return config


@FAST
@given(st.lists(st.tuples(st.lists(SEGMENTS, min_size=1, max_size=4), VALUES), max_size=3))
def test_random_overrides_give_a_config_or_a_config_error(
    overrides: list[tuple[list[str], str]],
) -> None:
    sets = [".".join(key) + "=" + value for key, value in overrides]
    given_config = copy.deepcopy(VALID)
    config = _outcome(lambda: load_config(given_config, sets)[0])
    assert given_config == VALID  # overrides apply to a copy, never to the caller's dict
    if config is not None:  # what was accepted really is in the config
        assert config.inputs[0].name and config.outputs[0].name


@FAST
@given(st.text(max_size=40))
def test_any_override_string_gives_a_config_or_a_config_error(override: str) -> None:
    _outcome(lambda: load_config(VALID, [override])[0])


@FAST
@given(st.text(alphabet=string.printable + "äé\u2028", max_size=80))
def test_any_config_file_gives_a_config_or_a_config_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    _outcome(lambda: load_config(path)[0])


NAMES = st.text(min_size=1, max_size=12).filter(lambda s: s == s.strip())


@st.composite
def valid_configs(draw: st.DrawFn) -> dict[str, Any]:
    """A random config that must validate: features, model, split and training settings."""
    names = draw(st.lists(NAMES, min_size=2, max_size=5, unique=True))
    cut = draw(st.integers(1, len(names) - 1))
    input_types = st.sampled_from(["number", "binary", "category", "text", "image"])
    output_types = st.sampled_from(["number", "binary", "category"])
    val = draw(st.floats(0, 0.45))
    arch = draw(st.sampled_from(["mlp", "cnn", "resnet"]))
    model: dict[str, Any] = {"arch": arch}
    if arch != "mlp":
        model["channels"] = draw(st.lists(st.integers(1, 64), min_size=1, max_size=3))
    if arch == "resnet":
        model["blocks"] = [draw(st.integers(1, 3)) for _ in model["channels"]]
    return {
        "name": draw(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,12}", fullmatch=True)),
        "seed": draw(st.integers(0, 2**31)),
        "data": {
            "source": draw(st.one_of(st.just("builtin:iris"), NAMES.map(lambda n: n + ".csv"))),
            "split": {"val": val, "test": draw(st.floats(0, 0.45))},
        },
        "inputs": [{"name": n, "type": draw(input_types)} for n in names[:cut]],
        "outputs": [{"name": n, "type": draw(output_types)} for n in names[cut:]],
        "model": model,
        "train": {
            "epochs": draw(st.integers(1, 1000)),
            "batch_size": draw(st.integers(1, 4096)),
            "optimizer": {"lr": draw(st.floats(1e-8, 10, allow_nan=False))},
            "precision": draw(st.sampled_from(["auto", "fp32", "bf16", "fp16"])),
        },
    }


@FAST
@given(valid_configs())
def test_valid_configs_round_trip_through_yaml(tmp_path: Path, data: dict[str, Any]) -> None:
    config = validate_config(data)
    path = tmp_path / "resolved.yaml"
    path.write_text(config_to_yaml(config), encoding="utf-8")
    again, _ = load_config(path)
    assert again == config
    assert config_to_yaml(again) == config_to_yaml(config)
    assert yaml.safe_load(config_to_yaml(config))["inputs"] == [
        f.model_dump(mode="json") for f in config.inputs
    ]
