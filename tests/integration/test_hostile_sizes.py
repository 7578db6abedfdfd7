"""A catalogue of hostile inputs that spend memory or time: files built to hurt, not mistakes.

Each case runs the real CLI in a subprocess under an address-space limit (RLIMIT_AS, 3 GiB:
enough for PyTorch, far below what the file asks for) and a timeout, and asserts the way a
user must see the refusal: exit code 2, one 'error:' line naming the file or key, no
traceback, in bounded time, and nothing touched outside the run directory.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO, make_table

import megalith as mg

MEMORY_LIMIT = 3 * 2**30
"""Bytes of address space each CLI process may map (PyTorch alone maps about 1 GB)."""
SECONDS = 120
"""Each case must be refused within this (most take a few seconds; CI is slow and shared)."""
CONFIG: dict[str, Any] = {
    "data": {"source": "table.csv"},
    "inputs": [{"name": "size", "type": "number"}, {"name": "color", "type": "category"}],
    "outputs": [{"name": "label", "type": "category"}],
    "train": {"epochs": 1, "batch_size": 16},
}


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def _megalith(cwd: Path, *args: str | Path, env: dict[str, str] | None = None) -> Any:
    """`python -m megalith ARGS` in `cwd`, memory-limited; returns the completed process."""
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "megalith", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=SECONDS,
        preexec_fn=_limit_memory,
        env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200", **(env or {})},
    )
    result.seconds = time.monotonic() - started
    return result


def _refused(result: Any, *words: str) -> None:
    """Exit code 2, no traceback, and one line 'error: ...' that holds every word, last."""
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr[-2000:]
    assert len(errors[0]) < 600, errors[0][:600]
    for word in words:
        assert word in errors[0], (word, errors[0])


def _snapshot(folder: Path, leave_out: Path | None = None) -> dict[str, tuple[int, int]]:
    """Every file under `folder` (but `leave_out`) -> (size, mtime in ns)."""
    found = {}
    for path in folder.rglob("*"):
        if leave_out is not None and path.is_relative_to(leave_out):
            continue
        if path.is_file() and not path.is_symlink():
            stat = path.stat()
            found[str(path.relative_to(folder))] = (stat.st_size, stat.st_mtime_ns)
    return found


@pytest.fixture
def project(tmp_path: Path) -> Path:
    make_table(rows=60).to_csv(tmp_path / "table.csv", index=False)
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(CONFIG))
    return tmp_path


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("trained")
    make_table(rows=60).to_csv(root / "table.csv", index=False)
    mg.train({**CONFIG, "data": {"source": str(root / "table.csv")}}, output_dir=root / "run")
    return root / "run"


@pytest.fixture
def run_copy(trained: Path, tmp_path: Path) -> Path:
    shutil.copytree(trained, tmp_path / "run")
    make_table(rows=10).to_csv(tmp_path / "new.csv", index=False)
    return tmp_path / "run"


def _predict_refused(run: Path, *words: str) -> None:
    """`predict` of the run is refused with `words`; nothing outside the run changes."""
    before = _snapshot(run.parent, leave_out=run)
    _refused(_megalith(run.parent, "predict", run, "--data", "new.csv"), *words)
    assert _snapshot(run.parent, leave_out=run) == before


# ---------------------------------------------------------------------------------------------
# Weights: the header is compared with the model before any tensor is read


def _header_only_weights(path: Path, header: dict[str, Any]) -> None:
    """A safetensors file of `header`, its tensors a hole in a sparse file (no disk used)."""
    encoded = json.dumps(header).encode()
    end = max((entry["data_offsets"][1] for entry in header.values()), default=0)
    with path.open("wb") as handle:
        handle.write(struct.pack("<Q", len(encoded)) + encoded)
        handle.truncate(8 + len(encoded) + end)


def _stored_header(path: Path) -> dict[str, Any]:
    with path.open("rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        return json.loads(handle.read(length))  # type: ignore[no-any-return]


def _with_entry(header: dict[str, Any], name: str, dtype: str, shape: list[int]) -> dict:
    """`header` with `name` declared as `dtype` / `shape`, every tensor laid out after it."""
    sizes = {"F32": 4, "F64": 8}
    entries = {k: v for k, v in header.items() if k != "__metadata__"}
    entries[name] = {"dtype": dtype, "shape": shape, "data_offsets": [0, 0]}
    offset, laid_out = 0, {}
    for key, entry in entries.items():
        count = 1
        for n in entry["shape"]:
            count *= n
        end = offset + count * sizes.get(entry["dtype"], 8)
        laid_out[key] = {**entry, "data_offsets": [offset, end]}
        offset = end
    return laid_out


GIB16 = 4 * 2**30  # float32 elements in 16 GiB


@pytest.mark.parametrize(
    "case, words",
    [
        ("huge shape of a real name", ["has shape (4294967296,)", "the model needs"]),
        ("huge extra tensor", ["unexpected huge"]),
        ("right shape, wider dtype", ["holds float64", "the model needs float32"]),
    ],
)
def test_weights_declaring_16_gib_are_refused_from_the_header(
    run_copy: Path, case: str, words: list[str]
) -> None:
    weights = run_copy / "model.safetensors"
    header = _stored_header(weights)
    first = next(k for k in header if k != "__metadata__" and header[k]["dtype"] == "F32")
    if case == "huge shape of a real name":
        header = _with_entry(header, first, "F32", [GIB16])
    elif case == "huge extra tensor":
        header = _with_entry(header, "huge", "F32", [GIB16])
    else:
        header = _with_entry(header, first, "F64", header[first]["shape"])
    _header_only_weights(weights, header)
    _predict_refused(run_copy, str(weights), *words)


def test_weights_header_claiming_more_than_the_file_holds(run_copy: Path) -> None:
    weights = run_copy / "model.safetensors"
    weights.write_bytes(struct.pack("<Q", 2**62) + b"{}")
    _predict_refused(run_copy, str(weights), "not a readable safetensors file")


def test_checkpoints_padded_to_16_gib_are_skipped_without_reading_them(run_copy: Path) -> None:
    """Resuming skips each such checkpoint (a warning naming it) instead of hashing 16 GiB."""
    checkpoints = sorted((run_copy / "checkpoints").iterdir())
    assert checkpoints
    for folder in checkpoints:
        with (folder / "model.safetensors").open("r+b") as handle:
            handle.truncate(16 * 2**30)
    result = _megalith(run_copy.parent, "train", "--resume", run_copy, "--set", "train.epochs=1")
    assert "Traceback" not in result.stderr and result.seconds < SECONDS / 2
    assert result.stderr.count("its header accounts for") == len(checkpoints), result.stderr


# ---------------------------------------------------------------------------------------------
# Tables: a sparse file, or one bigger than memory, is refused before it is read


def _sparse(path: Path, size: int, head: bytes = b"") -> None:
    with path.open("wb") as handle:
        handle.write(head)
        handle.truncate(size)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_sparse_2gb_file_as_a_table_is_not_text(project: Path, suffix: str) -> None:
    _sparse(project / f"big{suffix}", 2 * 10**9)
    result = _megalith(project, "init", f"big{suffix}", "--target", "label")
    _refused(result, f"big{suffix}", "NUL bytes")


@pytest.mark.parametrize("verb", ["init", "train", "predict"])
def test_table_bigger_than_memory_names_its_size(project: Path, trained: Path, verb: str) -> None:
    """A text header, then 4 GB more than the memory limit leaves (a hole past the sample)."""
    _sparse(project / "big.csv", 4 * 10**9, head=b"size,color,label\n" + b"1,red,a\n" * 9000)
    args: dict[str, list[str | Path]] = {
        "init": ["init", "big.csv", "--target", "label"],
        "train": ["train", "cfg.yaml", "--set", "data.source=big.csv", "-o", "run"],
        "predict": ["predict", trained, "--data", "big.csv"],
    }
    before = _snapshot(project)
    _refused(_megalith(project, *args[verb]), "big.csv is 4.0 GB", "more memory")
    assert _snapshot(project) == before


# ---------------------------------------------------------------------------------------------
# Configs: size, repeated keys, aliases, nesting


def test_config_of_16_million_items_is_refused_by_its_size(project: Path) -> None:
    with (project / "cfg.yaml").open("w") as handle:
        handle.write(yaml.safe_dump(CONFIG))
        handle.write("extra: [" + "0, " * 2_000_000 + "0]\n")
    result = _megalith(project, "train", "cfg.yaml")
    _refused(result, "cfg.yaml is 6.0 MB", "MEGALITH_MAX_CONFIG_BYTES")
    assert result.seconds < 60
    assert not (project / "runs").exists()


def test_config_size_limit_can_be_raised(project: Path) -> None:
    padding = "# " + "x" * 200 + "\n"
    (project / "cfg.yaml").write_text(yaml.safe_dump(CONFIG) + padding * 6000)
    allowed = {"MEGALITH_MAX_CONFIG_BYTES": "5000000"}
    result = _megalith(project, "train", "cfg.yaml", "-o", "run", env=allowed)
    assert result.returncode == 0, result.stderr[-2000:]


def test_repeated_key_names_both_lines(project: Path) -> None:
    text = yaml.safe_dump(CONFIG) + "train: {epochs: 50}\n"
    (project / "cfg.yaml").write_text(text)
    first = 1 + text.splitlines().index("train:")
    last = len(text.splitlines())
    _refused(
        _megalith(project, "train", "cfg.yaml"),
        "cfg.yaml",
        f"'train' appears twice (lines {first} and {last})",
    )


def test_alias_bomb_is_refused_before_it_is_walked(project: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    (project / "cfg.yaml").write_text(yaml.safe_dump(CONFIG) + "\n".join(lines) + "\n")
    _refused(_megalith(project, "train", "cfg.yaml"), "cfg.yaml", "more than 1,000,000 values")


@pytest.mark.parametrize("depth", [500, 10_000])
@pytest.mark.parametrize("style", ["flow", "block"])
def test_deeply_nested_config(project: Path, depth: int, style: str) -> None:
    flow, block = "[" * depth + "]" * depth, "\n" + "- " * depth + "x"  # '- - x': compact
    nested = flow if style == "flow" else block
    (project / "cfg.yaml").write_text(yaml.safe_dump(CONFIG) + f"extra: {nested}\n")
    _refused(_megalith(project, "train", "cfg.yaml"), "cfg.yaml", "nested more than 100 levels")


@pytest.mark.parametrize("depth", [500, 10_000])
def test_deeply_nested_set_value(project: Path, depth: int) -> None:
    value = "[" * depth + "]" * depth
    result = _megalith(project, "train", "cfg.yaml", "--set", f"model.hidden={value}")
    _refused(result, "--set 'model.hidden=[[[", "nested more than 100 levels")


# ---------------------------------------------------------------------------------------------
# Structured data and the run directory's own JSON files


def test_jsonl_cells_nested_1000_levels(project: Path) -> None:
    rows = [json.dumps({"size": 1.0, "color": "red", "label": "a"})] * 5
    rows.append('{"size": ' + "[" * 1000 + "]" * 1000 + ', "color": "red", "label": "b"}')
    (project / "table.jsonl").write_text("\n".join(rows) + "\n")
    result = _megalith(project, "init", "table.jsonl", "--target", "label")
    _refused(result, "table.jsonl: line 6", "nested more than 100 levels")


@pytest.mark.parametrize("depth", [200, 10_000])
def test_deeply_nested_preprocessor_json(run_copy: Path, depth: int) -> None:
    (run_copy / "preprocessor.json").write_text("[" * depth + "]" * depth)
    _predict_refused(run_copy, "preprocessor.json", "nested more than 100 levels")


# ---------------------------------------------------------------------------------------------
# Models too large to build


def test_training_a_model_of_10_to_the_12_parameters(project: Path) -> None:
    hidden = ["--set", "model.arch=mlp", "--set", "model.hidden=[1000000, 1000000]"]
    result = _megalith(project, "train", "cfg.yaml", *hidden, "-o", "run")
    _refused(result, "hidden [1000000, 1000000]", "1,000,00", "4.0 TB", "available")
    assert not (project / "run").exists()


def test_predict_of_a_run_edited_to_an_impossible_model(run_copy: Path) -> None:
    config = yaml.safe_load((run_copy / "config.yaml").read_text())
    config["model"]["hidden"] = [1_000_000, 1_000_000]
    (run_copy / "config.yaml").write_text(yaml.safe_dump(config))
    _predict_refused(run_copy, "hidden [1000000, 1000000]", "4.0 TB", "make the model smaller")
