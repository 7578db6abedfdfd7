"""A catalogue of hostile paths: run directories, configs and data built by someone else.

Beside the bad-input catalogue (honest mistakes, test_bad_inputs.py), each case here stands for
a kind of file made to hurt: a run directory whose folders are symlinks leading out (so that a
checkpoint would be written, and old ones pruned, somewhere else), a FIFO or a device where a
file is expected (a read that blocks forever or never ends), a symlink loop. Every case runs
the real CLI in a subprocess with its address space capped (`resource.setrlimit`) and a
timeout, and asserts exit code 2, exactly one line on stderr naming the path, no traceback,
and every file in a folder outside the run left exactly as it was.
"""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import make_table

import megalith as mg

MEMORY_LIMIT = 3 * 1024**3
"""Address space of each CLI process: a refusal must not read a device or a pipe into memory."""
TIME_LIMIT = 120
"""Seconds; a read that blocks (a FIFO) would hang until this and fail the case."""

CONFIG: dict[str, Any] = {
    "data": {"source": "table.csv"},
    "inputs": [{"name": "size", "type": "number"}, {"name": "color", "type": "category"}],
    "outputs": [{"name": "label", "type": "category"}],
    "train": {"epochs": 1, "batch_size": 16, "baselines": False},
}


def hostile_cli(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`megalith ARGS` in a subprocess with MEMORY_LIMIT and TIME_LIMIT."""

    def cap_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))

    return subprocess.run(
        [sys.executable, "-m", "megalith", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        preexec_fn=cap_memory,
        timeout=TIME_LIMIT,
    )


def assert_refused(result: subprocess.CompletedProcess[str], *words: str) -> None:
    """Exit code 2 and exactly one line on stderr, 'error: ...' with every word."""
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """Every entry under `folder` (links not followed): content digest and modification time."""
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            digest = "folder" if path.is_dir() else "other"
        found[str(path.relative_to(folder))] = (digest, path.lstat().st_mtime_ns)
    return found


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run with a checkpoint (trained once per module); cases tamper with copies."""
    root = tmp_path_factory.mktemp("hostile")
    make_table(rows=60).to_csv(root / "table.csv", index=False)
    mg.train({**CONFIG, "data": {"source": str(root / "table.csv")}}, output_dir=root / "run")
    return root / "run"


@pytest.fixture
def place(trained: Path, tmp_path: Path) -> Path:
    """tmp_path with run/ (a copy of the trained run), table.csv, cfg.yaml, and outside/:
    a folder of someone else's files (bait.txt, step-000000001/) that nothing may touch."""
    shutil.copytree(trained, tmp_path / "run", symlinks=True)
    shutil.copy(trained.parent / "table.csv", tmp_path / "table.csv")
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(CONFIG))
    outside = tmp_path / "outside"
    (outside / "step-000000001").mkdir(parents=True)
    (outside / "step-000000001" / "state.json").write_text("{}")
    (outside / "bait.txt").write_text("someone else's file\n")
    return tmp_path


# ---------------------------------------------------------------------------------------------
# Writes never escape the run directory


LINKED_OUT = {
    # the case: a resumed run would write its checkpoint outside and prune there
    "checkpoints on resume": ("checkpoints", "outside", ["train", "--resume", "run"]),
    "one checkpoint on resume": (
        "checkpoints/step-000000002",
        "outside/step-000000001",
        ["train", "--resume", "run"],
    ),
    "metrics.jsonl on resume": ("metrics.jsonl", "outside/bait.txt", ["train", "--resume", "run"]),
    "checkpoints on overwrite": (
        "checkpoints",
        "outside",
        ["train", "cfg.yaml", "-o", "run", "--overwrite"],
    ),
    "plots on report": ("plots", "outside", ["report", "run"]),
    "a temporary file on report": (".report.html.tmp", "outside/bait.txt", ["report", "run"]),
    "bundle on export": ("bundle", "outside", ["export", "run"]),
    "weights on predict": ("model.safetensors", "outside/bait.txt", ["predict", "run"]),
}


@pytest.mark.parametrize(("name", "target", "verb"), LINKED_OUT.values(), ids=list(LINKED_OUT))
def test_a_symlink_leading_out_of_the_run_is_refused(
    place: Path, name: str, target: str, verb: list[str]
) -> None:
    run, outside = place / "run", place / "outside"
    entry = run / name
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry)
    else:
        entry.unlink(missing_ok=True)
    entry.symlink_to((place / target).resolve())
    before, run_before = snapshot(outside), snapshot(run)
    extra = ["--set", "train.epochs=2"] if "--resume" in verb else []
    extra += ["--data", "table.csv"] if verb[0] == "predict" else []
    result = hostile_cli(*verb, *extra, cwd=place)
    assert_refused(result, f"run/{name} is a symlink to", "outside the run directory")
    assert snapshot(outside) == before
    assert snapshot(run) == run_before  # a refused verb changes nothing in the run either


def test_links_that_stay_inside_the_run_are_fine(place: Path) -> None:
    run = place / "run"
    (run / "plots").rename(run / "figures")
    (run / "figures" / "loss.png").unlink()
    (run / "plots").symlink_to("figures")
    result = hostile_cli("report", "run", cwd=place)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (run / "figures" / "loss.png").is_file()  # written again, through the inside link


SPECIAL_IN_RUN = {
    "a symlink loop as checkpoints": ("checkpoints", "loop", "is a symlink loop"),
    "a FIFO as metrics.jsonl": ("metrics.jsonl", "fifo", "is not a regular file or folder"),
}


@pytest.mark.parametrize(
    ("name", "kind", "words"), SPECIAL_IN_RUN.values(), ids=list(SPECIAL_IN_RUN)
)
def test_a_special_file_in_the_run_is_refused_on_resume(
    place: Path, name: str, kind: str, words: str
) -> None:
    entry = place / "run" / name
    if entry.is_dir():
        shutil.rmtree(entry)
    else:
        entry.unlink()
    if kind == "loop":
        entry.symlink_to(entry.name)
    else:
        os.mkfifo(entry)  # opened for appending, it would block until someone reads it
    result = hostile_cli("train", "--resume", "run", "--set", "train.epochs=2", cwd=place)
    assert_refused(result, f"run/{name}", words)


# ---------------------------------------------------------------------------------------------
# Special files where a file is expected: FIFOs, devices, symlink loops


def test_a_fifo_as_the_config_is_refused_instead_of_hanging(place: Path) -> None:
    os.mkfifo(place / "pipe.yaml")  # nothing ever writes to it: reading would block forever
    result = hostile_cli("train", "pipe.yaml", "-o", "new", cwd=place)
    assert_refused(result, "config file pipe.yaml is not a regular file or folder")
    assert not (place / "new").exists()


SPECIAL_DATA = {  # the path, and what the message says of it
    "a symlink loop": ("loop.csv", "is a symlink loop"),
    "a dangling symlink": ("gone.csv", "not found"),
    "a FIFO corpus": ("pipe.txt", "is not a regular file or folder"),
    "a device": ("/dev/zero", "is not a regular file or folder"),
}


def _special(place: Path, name: str) -> str:
    if name == "loop.csv":
        (place / name).symlink_to(name)
    elif name == "gone.csv":
        (place / name).symlink_to("nowhere.csv")
    elif name == "pipe.txt":
        os.mkfifo(place / name)
    return name


@pytest.mark.parametrize(("name", "words"), SPECIAL_DATA.values(), ids=list(SPECIAL_DATA))
def test_special_data_sources_are_refused_by_train(place: Path, name: str, words: str) -> None:
    source = _special(place, name)
    sets = ["--set", f"data.source={source}", "--set", "data.format=csv"]
    if name == "pipe.txt":  # read as a text corpus, before any table reader
        sets = ["--set", f"data.source={source}"]
    result = hostile_cli("train", "cfg.yaml", "-o", "new", *sets, cwd=place)
    named = "nowhere.csv" if name == "gone.csv" else name  # config.yaml records the target
    assert_refused(result, "data source", named, words)
    assert not (place / "new").exists()


@pytest.mark.parametrize(("name", "words"), SPECIAL_DATA.values(), ids=list(SPECIAL_DATA))
def test_special_data_sources_are_refused_by_predict(place: Path, name: str, words: str) -> None:
    source = _special(place, name)
    result = hostile_cli("predict", "run", "--data", source, cwd=place)
    assert_refused(result, "data source", name, words)
    if name == "gone.csv":
        assert "(a symlink to a missing path)" in result.stderr
    else:
        assert "not found" not in result.stderr


def test_a_run_directory_that_is_a_symlink_loop(place: Path) -> None:
    (place / "looped").symlink_to("looped")
    result = hostile_cli("evaluate", "looped", cwd=place)
    assert_refused(result, "run directory looped is a symlink loop")
