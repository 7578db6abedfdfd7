"""A run's exported bundle that no longer matches it: weights trained on since the export, or a
bundle folder that lost its bundle.json."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import CliResult
from exported import train_tiny_run
from safetensors.torch import load_file, save_file

import megalith as mg
from megalith.errors import RunError
from megalith.serving.backend import load_backend

Cli = Callable[..., CliResult]


@pytest.mark.slow  # a short training run and an export
def test_a_bundle_from_earlier_weights_is_not_served_for_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = train_tiny_run(tmp_path, epochs=1)
    run.export()
    assert load_backend(run.path).name == "onnx"  # current: the bundle serves the run
    weights = load_file(run.path / "model.safetensors")
    save_file({k: v + 0.01 for k, v in weights.items()}, run.path / "model.safetensors")

    backend = load_backend(run.path)  # as after `train --resume`: the run's own weights
    assert backend.name == "torch"
    assert "was exported from earlier weights" in capsys.readouterr().err
    with pytest.raises(RunError, match=r"export .* --overwrite"):
        load_backend(run.path, "onnx")
    assert load_backend(run.path / "bundle").name == "onnx"  # the bundle alone still serves


@pytest.mark.slow  # a short training run, an export and a CLI call
def test_a_bundle_without_its_description_says_so(cli: Cli, tmp_path: Path) -> None:
    run = train_tiny_run(tmp_path, epochs=1)
    bundle = run.export(tmp_path / "bundle")
    shutil.copytree(bundle, tmp_path / "broken")
    (tmp_path / "broken" / "bundle.json").unlink()
    done = cli("predict", "broken", "--data", "table.csv")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: broken is not a complete inference bundle: bundle.json is missing (it holds "
        "model.onnx); export the run again with `megalith export RUN`"
    )
    # a complete bundle where a run directory is needed: say what it is and what to give
    evaluated = cli("evaluate", "bundle")
    assert evaluated.returncode == 2
    assert "bundle is an inference bundle (model.onnx); this command takes the run directory" in (
        evaluated.stderr
    )
    with pytest.raises(RunError, match="is an inference bundle"):
        mg.load(bundle)
