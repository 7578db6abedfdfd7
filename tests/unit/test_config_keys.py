"""`--set` keys: parts joined by '.', and a part that holds '.' quoted or bracketed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import CliResult

from megalith.config import apply_override, load_config
from megalith.config_keys import split_override
from megalith.errors import ConfigError

DOTTED = {
    "data": {"source": "table.csv"},
    "inputs": [{"name": "a.b", "type": "number"}, {"name": "c", "type": "category"}],
    "outputs": [{"name": "y", "type": "category"}],
    "model": {"arch": "mlp", "modality_dropout": 0.1},
}


@pytest.mark.parametrize(
    ("override", "parts", "raw"),
    [
        ("train.epochs=3", ["train", "epochs"], "3"),
        (
            'model.modality_dropout_by_input."a.b"=0.3',
            ["model", "modality_dropout_by_input", "a.b"],
            "0.3",
        ),
        ("m.d['a.b']=0.3", ["m", "d", "a.b"], "0.3"),
        ('m.d["a=b"]=x=y', ["m", "d", "a=b"], "x=y"),
        ('m["x"].y=2', ["m", "x", "y"], "2"),
        ("inputs.0.type=category", ["inputs", "0", "type"], "category"),
        (" a . b =3", ["a", "b"], "3"),
    ],
)
def test_key_parts(override: str, parts: list[str], raw: str) -> None:
    assert split_override(override) == (parts, raw)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("epochs", "expected KEY=VALUE"),
        ("=3", "expected KEY=VALUE"),
        ("a..b=3", "empty part in the key 'a..b'"),
        ('a."b=3', 'the quote " in the key is not closed'),
        ('a."b"c=3', "after the quoted key part 'b' comes"),
        ("a[b]=3", "a bracketed key part is quoted"),
        ('a.["b"=3', "the bracket opened at 3 is not closed"),
        ("a.''=3", "an empty quoted part"),
    ],
)
def test_malformed_keys_are_named(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=f"--set '.*{message}"):
        split_override(override)


def test_a_dotted_column_gets_its_own_modality_dropout() -> None:
    config, _ = load_config(DOTTED, ['model.modality_dropout_by_input."a.b"=0.3'])
    assert config.model.modality_dropout_by_input == {"a.b": 0.3}
    config, _ = load_config(DOTTED, ["model.modality_dropout_by_input['a.b']=0.4"])
    assert config.model.modality_dropout_by_input == {"a.b": 0.4}
    data: dict = {"model": {"modality_dropout_by_input": {"c": 0.2}}}
    apply_override(data, 'model.modality_dropout_by_input["a.b"]=0.5')
    assert data["model"]["modality_dropout_by_input"] == {"c": 0.2, "a.b": 0.5}


def test_unquoted_dots_nest_and_the_error_says_to_quote() -> None:
    data: dict = {}
    apply_override(data, "model.modality_dropout_by_input.a.b=0.3")
    assert data["model"]["modality_dropout_by_input"] == {"a": {"b": 0.3}}
    with pytest.raises(
        ConfigError, match=r"column named 'a\.b' quote the name: --set '.*\"a\.b\"=0\.3'"
    ):
        load_config(DOTTED, ["model.modality_dropout_by_input.a.b=0.3"])


def test_cli_refuses_an_unclosed_quote_without_a_traceback(
    cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    (tmp_path / "c.yaml").write_text("data: {source: t.csv}\ninputs: []\noutputs: []\n")
    result = cli("train", "c.yaml", "--set", 'model.modality_dropout_by_input."a.b=0.3')
    assert result.returncode != 0
    assert 'the quote " in the key is not closed' in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()
