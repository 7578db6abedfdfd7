"""Fuzzing the readers of text made by someone else: the config reader, the table readers and the
run directory loader either succeed or raise a MegalithError (one line for the CLI), never
another exception: no RecursionError, MemoryError, KeyError or a library's own error.

A bounded number of examples each, so that CI (two cores) runs them on every change.
"""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import make_table
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import megalith as mg
from megalith.config import apply_override, read_yaml, validate_config
from megalith.data.sources import load_table
from megalith.errors import MegalithError
from megalith.run import Run

FUZZ = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# Pieces that make YAML and JSON interesting: nesting, anchors, aliases, tags, merges, keys.
PIECES = st.sampled_from(
    ["[", "]", "{", "}", ",", ": ", "- ", "\n", "  ", "&a ", "*a", "!!python/object ", "<<: ",
     "data", "source", "inputs", "outputs", "name", "type", "x", "1e9", "-1", "null", '"', "'",
     "\t", "#", "---\n", "? ", "|", ">", "\x00", "é"]
)  # fmt: skip
STRUCTURED_TEXT = st.one_of(
    st.lists(PIECES, max_size=60).map("".join),
    st.integers(1, 3000).map(lambda depth: "x: " + "[" * depth + "]" * depth),
    st.integers(1, 3000).map(lambda depth: "x:\n" + "- " * depth + "1"),
    st.text(max_size=200),
)
JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)


@FUZZ
@given(text=STRUCTURED_TEXT)
def test_config_reader_refuses_any_text_in_one_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        validate_config(read_yaml(path), origin=str(path))
    except MegalithError as error:
        assert str(error).strip()


@FUZZ
@given(value=STRUCTURED_TEXT, key=st.sampled_from(["model.hidden", "train.epochs", "a.b.0"]))
def test_set_override_takes_any_value_or_refuses_it(key: str, value: str) -> None:
    data: dict[str, Any] = {"data": {"source": "t.csv"}, "outputs": [{"name": "y"}]}
    try:
        apply_override(data, f"{key}={value}")
        validate_config(data)
    except MegalithError as error:
        assert str(error).strip()


@FUZZ
@given(
    content=st.one_of(
        STRUCTURED_TEXT,
        st.lists(JSON_VALUES, max_size=5).map(lambda rows: "\n".join(map(json.dumps, rows))),
        st.integers(1, 3000).map(lambda d: '{"a": ' + "[" * d + "]" * d + "}"),
    ),
    suffix=st.sampled_from([".csv", ".jsonl", ".json"]),
)
def test_table_readers_refuse_any_text_in_one_error(
    tmp_path: Path, content: str, suffix: str
) -> None:
    path = tmp_path / f"table{suffix}"
    path.write_text(content, encoding="utf-8")
    try:
        table = load_table(str(path))
    except MegalithError as error:
        assert str(error).strip()
    else:
        assert table.frame.shape[1] > 0


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fuzzed-run")
    make_table(rows=40).to_csv(root / "table.csv", index=False)
    config = {
        "data": {"source": str(root / "table.csv")},
        "inputs": [{"name": "size", "type": "number"}, {"name": "color", "type": "category"}],
        "outputs": [{"name": "label", "type": "category"}],
        "model": {"arch": "mlp", "hidden": [4]},
        "train": {"epochs": 1, "batch_size": 16},
    }
    mg.train(config, output_dir=root / "run")
    return root / "run"


def _loads_or_refuses(run: Path) -> None:
    try:
        loaded = Run.load(run)
        assert isinstance(loaded.metrics, dict)
    except MegalithError as error:
        assert str(error).strip()


@FUZZ
@given(
    name=st.sampled_from(["preprocessor.json", "eval.json", "config.yaml"]),
    content=st.one_of(STRUCTURED_TEXT, JSON_VALUES.map(json.dumps)),
)
def test_run_loader_refuses_damaged_files_in_one_error(
    trained: Path, tmp_path: Path, name: str, content: str
) -> None:
    run = tmp_path / "run"
    shutil.rmtree(run, ignore_errors=True)
    shutil.copytree(trained, run)
    (run / name).write_text(content, encoding="utf-8")
    _loads_or_refuses(run)


DTYPES = st.sampled_from(["F32", "F64", "F16", "BF16", "I64", "U8", "BOOL", "X9", ""])
ENTRIES = st.fixed_dictionaries(
    {
        "dtype": DTYPES,
        "shape": st.lists(st.integers(0, 2**40), max_size=3),
        "data_offsets": st.lists(st.integers(0, 2**40), min_size=2, max_size=2),
    }
)


@FUZZ
@given(
    entries=st.dictionaries(st.text(max_size=20), st.one_of(ENTRIES, JSON_VALUES), max_size=4),
    keep=st.booleans(),
)
def test_run_loader_refuses_any_weights_header_without_reading_it(
    trained: Path, tmp_path: Path, entries: dict[str, Any], keep: bool
) -> None:
    """Headers declaring up to 2**40-element tensors: refused from the header, in one error."""
    run = tmp_path / "run"
    shutil.rmtree(run, ignore_errors=True)
    shutil.copytree(trained, run)
    weights = run / "model.safetensors"
    with weights.open("rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(length)) if keep else {}
    header.update(entries)
    encoded = json.dumps(header).encode()
    with weights.open("wb") as handle:
        handle.write(struct.pack("<Q", len(encoded)) + encoded)
        handle.truncate(len(encoded) + 8 + 2**20)  # sparse: no tensor is really there
    _loads_or_refuses(run)


def test_yaml_fuzz_pieces_reach_the_loader() -> None:
    """The pieces above do build nesting and aliases that YAML reads (the fuzz is not vacuous)."""
    assert yaml.safe_load("a: &a [1]\nb: *a") == {"a": [1], "b": [1]}
    with pytest.raises(MegalithError, match="nested more than"):
        apply_override({}, "x=" + "[" * 3000 + "]" * 3000)
