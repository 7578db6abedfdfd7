"""A catalogue of bad inputs, each refused the way a user should see it.

Every case asserts the exact behaviour: a message naming the file, key, column or row (the words
are checked), exit code 2 from the CLI's own entry point, no traceback, and nothing half-written
that looks complete (no run directory, no model.safetensors, a refused directory untouched).

Most cases call `megalith.cli.main()` in this process (`megalith_cli` below): it is the function
the `megalith` command runs, so the exit code and the printed line are the real ones, and an
exception other than a MegalithError escapes into the test and fails it. A few cases run the real
CLI in a subprocess, where the process itself is the point: no traceback on stderr, a FIFO that
must not hang the process, a pickle that must never be unpickled.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import pickle
import shutil
import struct
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from conftest import CliResult, make_table
from PIL import Image
from safetensors.torch import load, save_file

import megalith as mg
from megalith.cli import main
from megalith.data import preprocess
from megalith.training import checkpoint_files

Cli = Callable[..., CliResult]

CONFIG: dict[str, Any] = {
    "data": {"source": "table.csv"},
    "inputs": [
        {"name": "size", "type": "number"},
        {"name": "color", "type": "category"},
        {"name": "member", "type": "binary"},
    ],
    "outputs": [{"name": "label", "type": "category"}],
    "train": {"epochs": 1, "batch_size": 16},
}


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str


def _refused(outcome: Outcome | CliResult, *words: str) -> None:
    """Exit code 2, no traceback, and one 'error:' message (after any progress) with every word."""
    code = outcome.code if isinstance(outcome, Outcome) else outcome.returncode
    assert code == 2, (code, outcome.stderr)
    assert "Traceback" not in outcome.stderr
    starts = [i for i, line in enumerate(outcome.stderr.splitlines()) if line.startswith("error: ")]
    assert len(starts) == 1, outcome.stderr
    message = "\n".join(outcome.stderr.splitlines()[starts[0] :])
    for word in words:
        assert word in message, (word, outcome.stderr)


@pytest.fixture
def megalith_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Outcome]:
    """Run `megalith ARGS` through the CLI's entry point in this process, in tmp_path."""
    monkeypatch.chdir(tmp_path)

    def run(*args: str | Path) -> Outcome:
        out, err = io.StringIO(), io.StringIO()
        monkeypatch.setattr(sys, "argv", ["megalith", *map(str, args)])
        code = 0
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
            except SystemExit as stop:
                code = stop.code if isinstance(stop.code, int) else 1
        return Outcome(code, out.getvalue(), err.getvalue())

    return run


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """tmp_path with table.csv (60 rows) and cfg.yaml training on it for one epoch."""
    make_table(rows=60).to_csv(tmp_path / "table.csv", index=False)
    _write_config(tmp_path / "cfg.yaml", CONFIG)
    return tmp_path


def _write_config(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _nothing_written(root: Path) -> None:
    assert not (root / "run").exists()
    assert not (root / "runs").exists()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run (trained once per module); cases damage copies of it."""
    root = tmp_path_factory.mktemp("trained")
    make_table(rows=60).to_csv(root / "table.csv", index=False)
    config = {**CONFIG, "data": {"source": str(root / "table.csv")}}
    mg.train(config, output_dir=root / "run")
    return root / "run"


@pytest.fixture
def run_copy(trained: Path, tmp_path: Path) -> Path:
    shutil.copytree(trained, tmp_path / "run")
    return tmp_path / "run"


# ---------------------------------------------------------------------------------------------
# The config: YAML, keys, types and ranges


def _set(config: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    config = yaml.safe_load(yaml.safe_dump(config))  # a deep copy
    *parents, last = dotted.split(".")
    node: Any = config
    for part in parents:
        node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
    node[int(last) if last.isdigit() else last] = value
    return config


CONFIG_MISTAKES = {
    "misspelt top-level key": (
        {**CONFIG, "trian": {"epochs": 2}},
        ["trian: unknown key 'trian' in top level", "did you mean 'train'"],
    ),
    "misspelt nested key": (
        _set(CONFIG, "train.optimizer.lrr", 0.1),
        ["train.optimizer.lrr: unknown key 'lrr'", "did you mean 'lr'"],
    ),
    "misspelt key in a list item": (
        _set(CONFIG, "inputs.0.nmae", "x"),
        ["inputs.0.nmae: unknown key 'nmae' in inputs.0", "did you mean 'name'"],
    ),
    "misspelt key inside model": (
        {**CONFIG, "model": {"arch": "cnn", "chanels": [8]}},
        ["model.chanels: unknown key 'chanels' in model", "did you mean 'channels'"],
    ),
    "unknown feature type": (
        _set(CONFIG, "inputs.0.type", "numbr"),
        ["inputs.0.type: unknown 'numbr'", "did you mean 'number'"],
    ),
    "unknown model arch": (
        {**CONFIG, "model": {"arch": "resnt"}},
        ["model.arch: unknown 'resnt'", "did you mean 'resnet'"],
    ),
    "wrong type": (
        _set(CONFIG, "train.epochs", "ten"),
        ["train.epochs:", "valid integer", "'ten'"],
    ),
    "wrong type in a union": (
        _set(CONFIG, "train.compile", "maybe"),
        ["train.compile:", "valid boolean", "'auto'", "(got 'maybe')"],
    ),
    "out of range": (
        _set(CONFIG, "train.optimizer.lr", -0.1),
        ["train.optimizer.lr:", "greater than 0", "(got -0.1)"],
    ),
    "fraction out of range": (
        _set(CONFIG, "data.split", {"val": 1.5}),
        ["data.split.val:", "less than 1", "(got 1.5)"],
    ),
    "fractions leaving no train rows": (
        _set(CONFIG, "data.split", {"val": 0.5, "test": 0.5}),
        ["data.split:", "val + test must be < 1"],
    ),
    "data.source missing": (
        {**CONFIG, "data": {"split": {"val": 0.2}}},
        ["data.source: required key is missing"],
    ),
    "a column both input and output": (
        _set(CONFIG, "inputs.0.name", "label"),
        ["both input and output: label"],
    ),
    "unknown early-stopping metric": (
        _set(CONFIG, "train.early_stop", {"metric": "val/acuracy"}),
        ["train.early_stop.metric", "'val/acuracy'", "did you mean 'val/accuracy'"],
    ),
    "unknown CSV separator": (
        _set(CONFIG, "data.delimiter", ":"),
        ["data.delimiter:", "';'", "(got ':')"],
    ),
    "decimal comma with comma separator": (
        _set(CONFIG, "data", {"source": "table.csv", "delimiter": ",", "decimal": ","}),
        ["data:", "decimal ',' needs a column separator other than ','"],
    ),
}


@pytest.mark.parametrize(("config", "words"), CONFIG_MISTAKES.values(), ids=list(CONFIG_MISTAKES))
def test_config_mistake_names_the_key(
    megalith_cli: Callable[..., Outcome],
    project: Path,
    config: dict[str, Any],
    words: list[str],
) -> None:
    _write_config(project / "bad.yaml", config)
    _refused(megalith_cli("train", "bad.yaml", "-o", "run"), *words)
    _nothing_written(project)


CONFIG_FILES = {
    "a YAML list": ("- data\n- inputs\n", ["bad.yaml", "must be a YAML mapping", "not list"]),
    "an empty file": ("", ["bad.yaml", "the config file is empty"]),
    "an impossible date": ("name: 2020-13-45\n", ["bad.yaml", "invalid YAML value", "quotes"]),
    "a Python tag": ("name: !!python/name:os.system\n", ["bad.yaml", "line 1", "invalid YAML"]),
}


@pytest.mark.parametrize(("text", "words"), CONFIG_FILES.values(), ids=list(CONFIG_FILES))
def test_config_file_that_is_not_a_mapping_names_the_file(
    megalith_cli: Callable[..., Outcome], project: Path, text: str, words: list[str]
) -> None:
    (project / "bad.yaml").write_text(text)
    _refused(megalith_cli("train", "bad.yaml", "-o", "run"), *words)
    _nothing_written(project)


def test_malformed_yaml_names_file_and_line_without_traceback(cli: Cli, project: Path) -> None:
    (project / "bad.yaml").write_text("data: {source: table.csv\ninputs: [\n")
    _refused(cli("train", "bad.yaml", "-o", "run"), "bad.yaml", "line 2", "invalid YAML")
    _nothing_written(project)


def test_config_path_that_is_a_folder(megalith_cli: Callable[..., Outcome], project: Path) -> None:
    (project / "folder.yaml").mkdir()
    _refused(megalith_cli("train", "folder.yaml"), "cannot read config file folder.yaml")


OVERRIDES = {
    "no equals sign": ("train.epochs", ["--set 'train.epochs'", "expected KEY=VALUE"]),
    "no key": ("=3", ["--set '=3'", "expected KEY=VALUE"]),
    "empty key part": ("train..epochs=3", ["train..epochs", "empty part"]),
    "index past the list": ("inputs.7.name=x", ["--set inputs.7", "list of 3 items"]),
    "key under a number": ("train.epochs.x=3", ["--set train.epochs.x", "not a mapping"]),
    "unparseable value": ("train.epochs=[1,", ["train.epochs:", "(got '[1,')"]),
}


@pytest.mark.parametrize(("override", "words"), OVERRIDES.values(), ids=list(OVERRIDES))
def test_malformed_set_override(
    megalith_cli: Callable[..., Outcome], project: Path, override: str, words: list[str]
) -> None:
    _refused(megalith_cli("train", "cfg.yaml", "-o", "run", "--set", override), *words)
    _nothing_written(project)


# ---------------------------------------------------------------------------------------------
# The data source: missing, unreadable, empty, malformed


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels, with a few bytes of pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def _write_source(root: Path, kind: str) -> str:
    """Create a broken data source of `kind` under root; return its data.source."""
    if kind == "folder named like a table":
        (root / "data.csv").mkdir()
        return "data.csv"
    if kind == "header only":
        (root / "data.csv").write_text("size,color,member,label\n")
        return "data.csv"
    if kind == "zero-byte csv":
        (root / "data.csv").write_bytes(b"")
        return "data.csv"
    if kind == "zero-byte jsonl":
        (root / "data.jsonl").write_bytes(b"")
        return "data.jsonl"
    if kind == "zero-byte parquet":
        (root / "data.parquet").write_bytes(b"")
        return "data.parquet"
    if kind == "parquet without rows":
        make_table(rows=4).iloc[:0].to_parquet(root / "data.parquet")
        return "data.parquet"
    if kind == "wrong field count":
        (root / "data.csv").write_text("size,color,member,label\n1,red,yes,low\n2,red,yes,low,9\n")
        return "data.csv"
    if kind == "not UTF-8":
        (root / "data.csv").write_bytes("size,color\n1,rouge\n2,bleu\xe9\n".encode("latin-1"))
        return "data.csv"
    if kind == "unknown suffix":
        (root / "data.xlsx").write_bytes(b"PK\x03\x04")
        return "data.xlsx"
    if kind == "image folder without images":
        for label in ("cats", "dogs"):
            (root / "pictures" / label).mkdir(parents=True)
            (root / "pictures" / label / "notes.txt").write_text("no pictures here")
        return "pictures"
    raise AssertionError(kind)


SOURCES = {
    "folder named like a table": ["data.csv is a folder", "data.format: images"],
    "header only": ["data.csv", "has columns but no rows"],
    "zero-byte csv": ["data.csv", "the file is empty"],
    "zero-byte jsonl": ["data.jsonl", "no columns", "is the file empty"],
    "zero-byte parquet": ["data.parquet", "not a readable Parquet file"],
    "parquet without rows": ["data.parquet", "has columns but no rows"],
    "wrong field count": ["data.csv", "line 3 has 5 fields but the header has 4"],
    "not UTF-8": ["data.csv", "not UTF-8", "save the file as UTF-8"],
    "unknown suffix": ["data.xlsx", "suffix '.xlsx'", "data.format"],
    "image folder without images": ["pictures", "no images found", "cats, dogs"],
}


@pytest.mark.parametrize(("kind", "words"), SOURCES.items(), ids=list(SOURCES))
def test_broken_data_source_names_the_file(
    megalith_cli: Callable[..., Outcome], project: Path, kind: str, words: list[str]
) -> None:
    source = _write_source(project, kind)
    outcome = megalith_cli("train", "cfg.yaml", "-o", "run", "--set", f"data.source={source}")
    _refused(outcome, *words)
    _nothing_written(project)


def test_fifo_as_data_source_is_refused_instead_of_hanging(cli: Cli, project: Path) -> None:
    os.mkfifo(project / "pipe.csv")  # nothing ever writes to it: reading would block forever
    result = cli("train", "cfg.yaml", "-o", "run", "--set", "data.source=pipe.csv")
    _refused(result, "pipe.csv is not a regular file")
    _nothing_written(project)


def test_unknown_builtin_dataset_without_traceback(cli: Cli, project: Path) -> None:
    result = cli("train", "cfg.yaml", "-o", "run", "--set", "data.source=builtin:digts")
    _refused(result, "'builtin:digts'", "did you mean 'digits'", "megalith datasets")
    _nothing_written(project)


def test_split_column_with_unknown_values(
    megalith_cli: Callable[..., Outcome], project: Path
) -> None:
    table = make_table(rows=60)
    table["part"] = ["train"] * 40 + ["val"] * 10 + ["tset"] * 10
    table.to_csv(project / "table.csv", index=False)
    outcome = megalith_cli("train", "cfg.yaml", "-o", "run", "--set", "data.split=part")
    _refused(outcome, "table.csv", "split column 'part' holds 'tset'", "rows 51, 52", "10 in all")
    _nothing_written(project)
    misspelt = megalith_cli("train", "cfg.yaml", "-o", "run", "--set", "data.split=prat")
    _refused(misspelt, "table.csv", "column 'prat'", "did you mean 'part'")


def test_split_column_without_val_rows_and_val_0(
    megalith_cli: Callable[..., Outcome], project: Path
) -> None:
    table = make_table(rows=60)
    table["part"] = ["train"] * 50 + ["test"] * 10
    table.to_csv(project / "table.csv", index=False)
    split = "data.split={column: part, val: 0}"
    outcome = megalith_cli("train", "cfg.yaml", "-o", "run", "--set", split)
    _refused(outcome, "table.csv", "split column 'part' has no 'val' rows", "data.split.val")
    _nothing_written(project)


def test_a_separator_other_than_the_configured_one(
    megalith_cli: Callable[..., Outcome], project: Path
) -> None:
    make_table(rows=60).to_csv(project / "table.csv", sep=";", index=False)
    outcome = megalith_cli("train", "cfg.yaml", "-o", "run", "--set", "data.delimiter=,")
    _refused(outcome, "table.csv", "read as one column ('id;size;", "data.delimiter: ';'")
    _nothing_written(project)


# ---------------------------------------------------------------------------------------------
# Columns and values


def _table_with(root: Path, row: int, column: str, value: Any) -> None:
    table = make_table(rows=60).astype({column: object})
    table.loc[row, column] = value
    table.to_csv(root / "table.csv", index=False)


COLUMN_MISTAKES = {
    "missing input column": (
        ["--set", "inputs.0.name=sise"],
        None,
        ["table.csv", "column 'sise' (did you mean 'size'?) not found"],
    ),
    "missing target column": (
        ["--set", "outputs.0.name=lable"],
        None,
        ["table.csv", "column 'lable' (did you mean 'label'?) not found"],
    ),
    "NaN where missing: error": (
        ["--set", "inputs.0.missing=error"],
        (7, "size", None),
        ["table.csv", "column 'size' has 1 missing values (row 8)"],
    ),
    "infinity in a number column": (
        [],
        (7, "size", "inf"),
        ["table.csv", "column 'size', row 8: value inf is infinite"],
    ),
    "text in a number column": (
        [],
        (7, "size", "twelve"),
        ["table.csv", "column 'size', row 8: value 'twelve' is not a number (1 such row)"],
    ),
    "three values in a binary column": (
        [],
        (7, "member", "maybe"),
        ["table.csv", "column 'member' has 3 values", "declare it as type category"],
    ),
    "a word in a sequence column": (
        ["--set", "inputs.0={name: size, type: sequence}"],
        (7, "size", "1 2 x 4"),
        ["table.csv", "column 'size', row 8: 'x' is not a number in the sequence '1 2 x 4'"],
    ),
}


@pytest.mark.parametrize(
    ("overrides", "damage", "words"), COLUMN_MISTAKES.values(), ids=list(COLUMN_MISTAKES)
)
def test_bad_column_names_the_column_and_row(
    megalith_cli: Callable[..., Outcome],
    project: Path,
    overrides: list[str],
    damage: tuple[int, str, Any] | None,
    words: list[str],
) -> None:
    if damage is not None:
        _table_with(project, *damage)
    _refused(megalith_cli("train", "cfg.yaml", "-o", "run", *overrides), *words)
    _nothing_written(project)


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("category", ["has 1 distinct value(s) ('same')", "at least two"]),
        ("binary", ["single value ('same')"]),
    ],
    ids=["category", "binary"],
)
def test_target_with_a_single_class(
    megalith_cli: Callable[..., Outcome], project: Path, kind: str, words: list[str]
) -> None:
    make_table(rows=60).assign(label="same").to_csv(project / "table.csv", index=False)
    outcome = megalith_cli("train", "cfg.yaml", "-o", "run", "--set", f"outputs.0.type={kind}")
    _refused(outcome, "table.csv", "target 'label'", *words)
    _nothing_written(project)


def test_text_column_empty_on_train(megalith_cli: Callable[..., Outcome], project: Path) -> None:
    make_table(rows=60).assign(note="").to_csv(project / "table.csv", index=False)
    outcome = megalith_cli(
        "train", "cfg.yaml", "-o", "run", "--set", "inputs.0={name: note, type: text}"
    )
    _refused(outcome, "table.csv", "text column 'note' has no words in the train split")
    _nothing_written(project)


def _image_table(root: Path, bad: bytes | None = None, bad_row: int = 5) -> None:
    """24 tiny noise images in a path column; the one at `bad_row` replaced by `bad`."""
    (root / "img").mkdir()
    rng = np.random.default_rng(0)
    for i in range(24):
        pixels = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / "img" / f"{i}.png")
    if bad is not None:
        (root / "img" / f"{bad_row}.png").write_bytes(bad)
    rows = {"pic": [f"img/{i}.png" for i in range(24)], "label": ["a", "b"] * 12}
    pd.DataFrame(rows).to_csv(root / "images.csv", index=False)
    config = {
        "data": {"source": "images.csv"},
        "inputs": [{"name": "pic", "type": "image"}],
        "outputs": [{"name": "label", "type": "category"}],
        "train": {"epochs": 1},
    }
    _write_config(root / "images.yaml", config)


def _truncated_png() -> bytes:
    buffer = io.BytesIO()
    noise = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    Image.fromarray(noise).save(buffer, format="PNG")
    return buffer.getvalue()[:-200]


IMAGE_MISTAKES = {
    "not an image": (b"GIF? no: plain text", [], "is not an image Pillow can read"),
    "truncated PNG": (_truncated_png(), [], "is corrupt or truncated"),
    "decompression bomb": (_png_header(60_000, 60_000), [], "is too large to decode safely"),
    "more pixels than max_pixels": (
        _png_header(9_000, 9_000),
        [],
        "has 9000x9000 pixels, more than max_pixels (50000000)",
    ),
}


@pytest.mark.parametrize(
    ("bad", "overrides", "problem"), IMAGE_MISTAKES.values(), ids=list(IMAGE_MISTAKES)
)
def test_bad_image_names_column_row_and_file(
    megalith_cli: Callable[..., Outcome],
    tmp_path: Path,
    bad: bytes,
    overrides: list[str],
    problem: str,
) -> None:
    _image_table(tmp_path, bad, bad_row=5)
    outcome = megalith_cli("train", "images.yaml", "-o", "run", *overrides)
    _refused(outcome, "images.csv", "column 'pic', row 6", "img/5.png", problem)
    _nothing_written(tmp_path)


def test_missing_image_file_and_small_max_pixels(
    megalith_cli: Callable[..., Outcome], tmp_path: Path
) -> None:
    _image_table(tmp_path)
    (tmp_path / "img" / "9.png").unlink()
    _refused(
        megalith_cli("train", "images.yaml", "-o", "run"),
        "column 'pic', row 10",
        "img/9.png' does not exist",
    )
    (tmp_path / "img" / "9.png").write_bytes((tmp_path / "img" / "8.png").read_bytes())
    small = megalith_cli("train", "images.yaml", "-o", "run", "--set", "inputs.0.max_pixels=50")
    _refused(small, "column 'pic'", "has 8x8 pixels, more than max_pixels (50)")
    _nothing_written(tmp_path)


# ---------------------------------------------------------------------------------------------
# A run directory that is incomplete or damaged


@pytest.mark.parametrize("name", ["config.yaml", "model.safetensors", "preprocessor.json"])
def test_run_directory_missing_a_file(
    megalith_cli: Callable[..., Outcome], run_copy: Path, name: str
) -> None:
    (run_copy / name).unlink()
    for verb in (["evaluate", "run"], ["predict", "run", "--data", "table.csv"]):
        _refused(megalith_cli(*verb), "run is not a complete run directory", f"missing {name}")


def _damage_weights(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
        return
    weights = {name: t.clone() for name, t in load(data).items()}  # no file mapping kept open
    first = next(iter(weights))
    if how == "NaN":
        weights[first] = weights[first].clone()
        weights[first].view(-1)[0] = float("nan")
        save_file(weights, path)
    elif how == "another shape":
        weights[first] = torch.zeros(3, 1)
        save_file(weights, path)
    elif how == "another model":
        weights["extra.weight"] = torch.zeros(2)
        save_file(weights, path)
    elif how == "torch.save zip":
        torch.save(weights, path)


WEIGHT_DAMAGE = {
    "truncated": ["not a readable safetensors file", "never unpickles"],
    "NaN": ["holds NaN or Inf values in"],
    "another shape": ["does not match the model", "has shape (3, 1)"],
    "another model": ["does not match the model", "unexpected extra.weight"],
    "torch.save zip": ["not a readable safetensors file", "never unpickles"],
}


@pytest.mark.parametrize(("how", "words"), WEIGHT_DAMAGE.items(), ids=list(WEIGHT_DAMAGE))
def test_damaged_weights_are_refused(
    megalith_cli: Callable[..., Outcome], run_copy: Path, how: str, words: list[str]
) -> None:
    _damage_weights(run_copy / "model.safetensors", how)
    _refused(megalith_cli("evaluate", "run"), "run/model.safetensors", *words)
    with pytest.raises(mg.RunError, match=r"model\.safetensors"):
        mg.load(run_copy)


class _LeavesAMark:
    """Unpickling this creates a file: the proof that a pickle was (or was not) loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


def test_pickle_offered_as_weights_is_never_unpickled(
    cli: Cli, run_copy: Path, tmp_path: Path
) -> None:
    payload = pickle.dumps({"linear.weight": _LeavesAMark(tmp_path / "unpickled")})
    pickle.loads(pickle.dumps(_LeavesAMark(tmp_path / "armed")))
    assert (tmp_path / "armed").exists()  # the payload is live: loading it would leave a mark
    (run_copy / "model.safetensors").write_bytes(payload)
    for verb in (["evaluate", "run"], ["predict", "run", "--data", "table.csv"]):
        _refused(cli(*verb), "run/model.safetensors", "not a readable safetensors file")
    assert not (tmp_path / "unpickled").exists()


def test_damaged_preprocessor_and_config_in_a_run(
    megalith_cli: Callable[..., Outcome], run_copy: Path
) -> None:
    good = (run_copy / "preprocessor.json").read_text()
    (run_copy / "preprocessor.json").write_text("{not json")
    _refused(megalith_cli("evaluate", "run"), "run/preprocessor.json", "cannot read")
    fitted_for_other = good.replace('"name": "size"', '"name": "weight"')
    (run_copy / "preprocessor.json").write_text(fitted_for_other)
    _refused(
        megalith_cli("evaluate", "run"),
        "run/preprocessor.json was fitted for other inputs",
        "weight (number)",
    )
    (run_copy / "preprocessor.json").write_text(good)
    config = yaml.safe_load((run_copy / "config.yaml").read_text())
    config["train"]["epohcs"] = 3
    _write_config(run_copy / "config.yaml", config)
    _refused(megalith_cli("evaluate", "run"), "run/config.yaml: invalid config", "'epohcs'")


def test_run_whose_training_table_is_gone(
    megalith_cli: Callable[..., Outcome], run_copy: Path, tmp_path: Path
) -> None:
    config = yaml.safe_load((run_copy / "config.yaml").read_text())
    config["data"]["source"] = str(tmp_path / "moved.csv")
    _write_config(run_copy / "config.yaml", config)
    _refused(megalith_cli("evaluate", "run"), "data source not found", "moved.csv")
    _refused(megalith_cli("evaluate", "elsewhere"), "run directory not found: elsewhere")
    _refused(megalith_cli("train", "--resume", "elsewhere"), "cannot resume elsewhere")


# ---------------------------------------------------------------------------------------------
# Evaluating and predicting on bad data


def test_unseen_label_at_evaluation_names_value_and_row(cli: Cli, run_copy: Path) -> None:
    rows = make_table(rows=10, seed=3)
    rows.loc[4, "label"] = "enormous"
    rows.to_csv(run_copy.parent / "odd.csv", index=False)
    result = cli("evaluate", "run", "--data", "odd.csv")
    _refused(result, "odd.csv", "target 'label' has label 'enormous'", "(row 5)", "known labels")


def test_evaluate_on_data_without_rows(
    megalith_cli: Callable[..., Outcome], run_copy: Path, tmp_path: Path
) -> None:
    (tmp_path / "header.csv").write_text("size,color,member,label\n")
    _refused(megalith_cli("evaluate", "run", "--data", "header.csv"), "header.csv", "no rows")
    make_table(rows=5).assign(label=None).to_csv(tmp_path / "unlabelled.csv", index=False)
    _refused(
        megalith_cli("evaluate", "run", "--data", "unlabelled.csv"),
        "unlabelled.csv: no rows with a target to evaluate on",
    )


def test_predict_on_data_missing_an_input_column(
    megalith_cli: Callable[..., Outcome], run_copy: Path, tmp_path: Path
) -> None:
    make_table(rows=8).rename(columns={"color": "colour"}).to_csv(tmp_path / "new.csv", index=False)
    outcome = megalith_cli("predict", "run", "--data", "new.csv", "--output", "pred.csv")
    _refused(outcome, "new.csv", "column 'color' (did you mean 'colour'?) not found")
    assert "reads the column(s)" in outcome.stderr and "config" not in outcome.stderr
    assert not (tmp_path / "pred.csv").exists()
    make_table(rows=8).to_csv(tmp_path / "rows.csv", index=False)
    unknown = megalith_cli("predict", "run", "--data", "rows.csv", "--output", "pred.xlsx")
    _refused(unknown, "--output pred.xlsx", "unknown suffix '.xlsx'")
    assert not (tmp_path / "pred.xlsx").exists()


def test_predict_on_a_csv_in_another_separator_than_training(
    megalith_cli: Callable[..., Outcome], run_copy: Path, tmp_path: Path
) -> None:
    make_table(rows=8).to_csv(tmp_path / "new.csv", sep="|", index=False)
    outcome = megalith_cli("predict", "run", "--data", "new.csv", "--output", "pred.csv")
    _refused(
        outcome,
        "new.csv: read comma-separated like this run's data",
        "run/config.yaml",
        "seems pipe-separated",
        "save it with ','",
    )
    assert not (tmp_path / "pred.csv").exists()


# ---------------------------------------------------------------------------------------------
# The output directory: taken, read-only, full


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if p.is_file()
    }


def test_existing_output_directory_is_left_untouched_unless_overwrite(
    megalith_cli: Callable[..., Outcome], project: Path
) -> None:
    (project / "run").mkdir()
    (project / "run" / "notes.txt").write_text("my notes")
    (project / "run" / "model.safetensors").write_bytes(b"weights of another model")
    before = _snapshot(project / "run")
    _refused(
        megalith_cli("train", "cfg.yaml", "-o", "run"),
        "output directory run already exists and is not empty",
        "--overwrite",
    )
    assert _snapshot(project / "run") == before
    assert megalith_cli("train", "cfg.yaml", "-o", "run", "--overwrite").code == 0
    assert mg.load(project / "run").metrics["test"]["accuracy"] >= 0  # new, loadable weights


def test_output_directory_that_cannot_be_made(
    megalith_cli: Callable[..., Outcome], project: Path
) -> None:
    (project / "file").write_text("a regular file")
    _refused(
        megalith_cli("train", "cfg.yaml", "-o", "file/run"),
        "cannot write to output directory file/run: Not a directory",
    )
    _refused(
        megalith_cli("train", "cfg.yaml", "-o", "file"),
        "output directory file exists and is not a directory",
    )
    assert (project / "file").read_text() == "a regular file"


def _fail_with(code: int) -> Callable[..., Any]:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise OSError(code, os.strerror(code))

    return fail


def test_read_only_output_directory(
    megalith_cli: Callable[..., Outcome], project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "run").mkdir()
    write_text = Path.write_text

    def read_only(self: Path, *args: Any, **kwargs: Any) -> int:
        if self.parent.name == "run":
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return write_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", read_only)
    _refused(
        megalith_cli("train", "cfg.yaml", "-o", "run"),
        "cannot write to output directory run: Read-only file system",
    )
    assert list((project / "run").iterdir()) == []


def test_disk_full_while_checkpointing(
    megalith_cli: Callable[..., Outcome], project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpoint_files, "save_file", _fail_with(errno.ENOSPC))
    outcome = megalith_cli("train", "cfg.yaml", "-o", "run")
    _refused(
        outcome,
        "cannot write checkpoint",
        "step-000000003: No space left on device",
        "megalith train --resume run",
    )
    run = project / "run"
    assert not (run / "model.safetensors").exists() and not (run / "eval.json").exists()
    assert list((run / "checkpoints").iterdir()) == []  # no temporary folder left behind
    with pytest.raises(mg.RunError, match="not a complete run directory"):
        mg.load(run)


@pytest.mark.parametrize("name", ["config.yaml", "preprocessor.json"])
def test_disk_full_while_writing_the_run_files(
    megalith_cli: Callable[..., Outcome],
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
) -> None:
    if name == "config.yaml":
        write_text = Path.write_text

        def full(self: Path, *args: Any, **kwargs: Any) -> int:
            if self.name == "config.yaml.tmp":
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return write_text(self, *args, **kwargs)

        monkeypatch.setattr(Path, "write_text", full)
    else:
        monkeypatch.setattr(preprocess.tempfile, "NamedTemporaryFile", _fail_with(errno.ENOSPC))
    outcome = megalith_cli("train", "cfg.yaml", "-o", "run")
    _refused(outcome, f"cannot write run/{name}: No space left on device", "--output-dir")
    left = {p.name for p in (project / "run").iterdir()}
    assert left <= {"config.yaml"}, left  # nothing temporary, nothing that looks complete


def test_disk_full_while_saving_the_final_weights(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from megalith import runs

    monkeypatch.chdir(project)
    monkeypatch.setattr(runs, "save_file", _fail_with(errno.ENOSPC))
    with pytest.raises(mg.RunError, match=r"model\.safetensors.*No space left on device"):
        mg.train("cfg.yaml", output_dir="run")
    assert not (project / "run" / "model.safetensors").exists()
    assert not (project / "run" / "model.safetensors.tmp").exists()


def test_output_file_in_a_missing_folder(
    megalith_cli: Callable[..., Outcome], run_copy: Path, tmp_path: Path
) -> None:
    make_table(rows=8).to_csv(tmp_path / "new.csv", index=False)
    outcome = megalith_cli("predict", "run", "--data", "new.csv", "--output", "nodir/pred.csv")
    _refused(outcome, "cannot write nodir/pred.csv", "folder exists")
    outcome = megalith_cli("init", "new.csv", "--target", "label", "--output", "nodir/cfg.yaml")
    _refused(outcome, "cannot write nodir/cfg.yaml", "folder exists")
    assert not (tmp_path / "nodir").exists()
