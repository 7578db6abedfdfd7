"""Verbs that write into an existing run directory leave it exactly as it was when they fail.

Each case snapshots the run directory (every file's bytes and modification time), runs a verb
that must be refused, and checks the one-line error, exit code 2 and the unchanged directory;
then the run still resumes, predicts and reports as before.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import CliResult, make_table

Cli = Callable[..., CliResult]

CONFIG: dict[str, Any] = {
    "data": {"source": "table.csv"},
    "inputs": [
        {"name": "size", "type": "number"},
        {"name": "color", "type": "category"},
    ],
    "outputs": [{"name": "label", "type": "category"}],
    "model": {"arch": "mlp", "hidden": [64, 64]},
    "train": {"epochs": 1, "batch_size": 32},
}


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _refused(result: CliResult, *words: str) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    for word in words:
        assert word in errors[0], (word, errors[0])
    return errors[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 2-input MLP run ([64, 64] hidden), trained once for the module."""
    import megalith as mg

    folder = tmp_path_factory.mktemp("trained")
    make_table(rows=200).to_csv(folder / "table.csv", index=False)
    (folder / "cfg.yaml").write_text(yaml.safe_dump(CONFIG))
    mg.train(folder / "cfg.yaml", output_dir=folder / "run")
    return folder


@pytest.fixture
def run(trained: Path, tmp_path: Path) -> Path:
    """A private copy of the trained run (its data source stays where it was)."""
    import shutil

    shutil.copytree(trained / "run", tmp_path / "run")
    return tmp_path / "run"


def test_resume_that_changes_the_model_is_refused_before_anything_is_written(
    cli: Cli, run: Path
) -> None:
    before = _snapshot(run)
    result = cli("train", "--resume", "run", "--set", "model.hidden=[32]")
    message = _refused(result, "cannot resume run", "model.hidden ([64, 64] -> [32])", "new run")
    assert "train.epochs" in message  # says what may change instead
    assert _snapshot(run) == before
    # a plain resume for more epochs still works, and predict still loads the run
    assert cli("train", "--resume", "run", "--set", "train.epochs=2").returncode == 0
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["model"]["hidden"] == [64, 64] and config["train"]["epochs"] == 2
    assert cli("evaluate", "run").returncode == 0


def test_every_refused_key_is_named_in_one_line(cli: Cli, run: Path) -> None:
    before = _snapshot(run)
    result = cli(
        "train",
        "--resume",
        "run",
        "--set",
        "train.optimizer.name=sgd",
        "--set",
        "train.batch_size=16",
        "--set",
        "seed=7",
        "--set",
        "train.epochs=3",  # allowed, and not listed
    )
    message = _refused(result, "train.optimizer.name ('adamw' -> 'sgd')", "seed (0 -> 7)")
    assert "train.batch_size (32 -> 16)" in message
    assert "train.epochs (" not in message
    assert _snapshot(run) == before


def test_resumable_keys_change_and_are_recorded(cli: Cli, run: Path) -> None:
    result = cli(
        "train",
        "--resume",
        "run",
        "--set",
        "train.epochs=2",
        "--set",
        "train.early_stop={metric: val/accuracy, patience: 3}",
        "--set",
        "train.log_every=5",
    )
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["train"]["early_stop"]["patience"] == 3 and config["train"]["log_every"] == 5


def test_hand_edited_config_that_no_longer_fits_the_checkpoint(cli: Cli, run: Path) -> None:
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["model"]["hidden"] = [32]
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    before = _snapshot(run)
    result = cli("train", "--resume", "run", "--set", "train.epochs=2")
    _refused(result, "cannot resume run", "model.hidden ([64, 64] -> [32])")
    assert _snapshot(run) == before


def test_report_of_a_damaged_run_changes_nothing(cli: Cli, run: Path) -> None:
    (run / "model.safetensors").write_bytes(b"not safetensors")
    before = _snapshot(run)
    _refused(cli("report", "run"), "run/model.safetensors", "not a readable safetensors file")
    assert _snapshot(run) == before


@pytest.mark.parametrize("name", ["metrics.jsonl", "predictions.csv"])
def test_predictions_never_overwrite_the_runs_own_files(cli: Cli, run: Path, name: str) -> None:
    make_table(rows=5, seed=4).to_csv(run.parent / "new.csv", index=False)
    before = _snapshot(run)
    result = cli("predict", "run", "--data", "new.csv", "--output", f"run/{name}")
    if name == "metrics.jsonl":
        _refused(result, "--output run/metrics.jsonl", "run directory's own")
        assert _snapshot(run) == before
    else:  # a new file beside the run's files is the user's to write
        assert result.returncode == 0, result.stderr
        assert (run / name).is_file()


@pytest.mark.parametrize(
    ("key", "value", "shown"),
    [
        ("seed", 5, "seed (0 -> 5)"),
        ("batch_size", 8, "train.batch_size (32 -> 8)"),
        ("lr", 0.01, "train.optimizer.lr"),
    ],
)
def test_a_hand_edited_config_is_compared_with_the_checkpoints_own(
    cli: Cli, run: Path, key: str, value: Any, shown: str
) -> None:
    config = yaml.safe_load((run / "config.yaml").read_text())
    if key == "seed":
        config["seed"] = value
    elif key == "batch_size":
        config["train"]["batch_size"] = value
    else:
        config["train"]["optimizer"]["lr"] = value
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    before = _snapshot(run)
    _refused(cli("train", "--resume", "run", "--set", "train.epochs=2"), "cannot resume", shown)
    assert _snapshot(run) == before


def test_fewer_epochs_than_trained_is_refused_and_time_adds_up(cli: Cli, run: Path) -> None:
    import json

    before = _snapshot(run)
    first = json.loads((run / "eval.json").read_text())["training"]["seconds"]
    assert cli("train", "--resume", "run", "--set", "train.epochs=3").returncode == 0
    assert _snapshot(run) != before
    after = _snapshot(run)
    _refused(
        cli("train", "--resume", "run", "--set", "train.epochs=2"),
        "has already trained 3 epochs",
    )
    assert _snapshot(run) == after
    total = json.loads((run / "eval.json").read_text())["training"]["seconds"]
    assert total > first  # the resumed run's time includes the first session's


def test_an_older_checkpoint_without_a_recorded_config_is_checked_by_shape(
    cli: Cli, run: Path
) -> None:
    import json

    for state in (run / "checkpoints").glob("step-*/state.json"):
        manifest = json.loads(state.read_text())
        manifest["loop"].pop("config")
        state.write_text(json.dumps(manifest))
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["model"]["hidden"] = [32]
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    before = _snapshot(run)
    result = cli("train", "--resume", "run", "--set", "train.epochs=2")
    _refused(result, "checkpoints/step-", "does not match the model in config.yaml", "combiner")
    assert _snapshot(run) == before
