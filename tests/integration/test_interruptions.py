"""Never lose a run: SIGKILL at any moment and SIGTERM resume exactly; NaN stops with a hint."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from conftest import REPO
from safetensors.torch import load_file

CONFIG = {
    "name": "kill",
    "seed": 3,
    "data": {"source": "builtin:digits"},
    "inputs": [{"name": "image", "type": "image"}],
    "outputs": [{"name": "label", "type": "category"}],
    "model": {"arch": "cnn", "channels": [8, 16], "hidden": [32], "dropout": 0.3},
    "train": {
        "epochs": 4,
        "batch_size": 32,
        "checkpoint_every": 4,
        "log_every": 5,
        "schedule": {"name": "cosine", "warmup_steps": 10},
        "early_stop": {"metric": "val/loss", "patience": 10},
    },
}


def _start(*args: str | Path, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "megalith", "train", *map(str, args)],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(
    process: subprocess.Popen[str], ready: Callable[[], bool], timeout: float = 120
) -> bool:
    """Poll until ready() or the process ends; True when ready() came first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return True
        if process.poll() is not None:
            return False
        time.sleep(0.002)
    raise TimeoutError("training neither reached the point nor finished")


def _checkpoints(run: Path) -> list[str]:
    folder = run / "checkpoints"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def _latest_step(run: Path) -> int:
    steps = [int(n.removeprefix("step-")) for n in _checkpoints(run) if n.startswith("step-")]
    return max(steps, default=0)


def _lines(path: Path) -> int:
    return path.read_text().count("\n") if path.is_file() else 0


def _log(run: Path) -> list[dict[str, float]]:
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in record.items() if k != "time"} for record in lines]


def _assert_same_run(a: Path, b: Path) -> None:
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa), "weights differ"
    assert _log(a) == _log(b), "metrics.jsonl differs"
    ea, eb = (json.loads((r / "eval.json").read_text()) for r in (a, b))
    assert ea["test"] == eb["test"] and ea["val"] == eb["val"]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    return path


def test_sigkill_at_several_points_resumes_bit_for_bit(tmp_path: Path, config: Path) -> None:
    reference = _start(config, "-o", "reference", cwd=tmp_path)
    assert reference.wait(timeout=300) == 0, reference.stderr.read() if reference.stderr else ""

    run = tmp_path / "run"
    kill_points = [
        lambda: len(_checkpoints(run)) >= 1,  # at or just after the first mid-epoch checkpoint
        # during a checkpoint write when the poll catches one; otherwise by step 60 at the latest
        lambda: any(n.startswith(".tmp-") for n in _checkpoints(run)) or _latest_step(run) >= 60,
        lambda: _lines(run / "metrics.jsonl") >= 25,  # in the third epoch
    ]
    process = _start(config, "-o", "run", cwd=tmp_path)
    for point in kill_points:
        assert _wait_for(process, point), "the run finished before this kill point"
        process.send_signal(signal.SIGKILL)
        process.wait()
        process = _start("--resume", "run", cwd=tmp_path)
    assert process.wait(timeout=300) == 0, process.stderr.read() if process.stderr else ""
    assert not any(n.startswith(".tmp-") for n in _checkpoints(run))
    _assert_same_run(tmp_path / "reference", run)


def test_sigterm_checkpoints_says_how_to_resume_and_resumes_exactly(
    tmp_path: Path, config: Path
) -> None:
    subprocess.run(
        [sys.executable, "-m", "megalith", "train", config, "-o", "reference"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    run = tmp_path / "run"
    process = _start(config, "-o", "run", cwd=tmp_path)
    assert _wait_for(process, lambda: len(_checkpoints(run)) >= 1)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert "stopped by SIGTERM" in stderr and "megalith train --resume" in stderr
    assert "Traceback" not in stderr
    assert not (run / "model.safetensors").exists()  # nothing that looks complete
    resumed = subprocess.run(
        [sys.executable, "-m", "megalith", "train", "--resume", "run"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert resumed.returncode == 0, resumed.stderr
    _assert_same_run(tmp_path / "reference", run)


def _overflowing_table(path: Path, bad_rows: int) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=200)
    x[:bad_rows] = 3e38  # a float32 overflow once multiplied by any weight > 1
    y = np.where(rng.normal(size=200) > 0, "pos", "neg")
    pd.DataFrame({"x": x, "y": y}).to_csv(path, index=False)


def _nan_config(tmp_path: Path, bad_rows: int, **train: object) -> Path:
    _overflowing_table(tmp_path / "t.csv", bad_rows)
    config = {
        "data": {"source": "t.csv"},
        "inputs": [{"name": "x", "type": "number", "normalize": "none"}],
        "outputs": [{"name": "y", "type": "category"}],
        "model": {"arch": "mlp", "hidden": [8]},
        "train": {"epochs": 2, "batch_size": 16, **train},
    }
    path = tmp_path / "nan.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_nan_loss_stops_at_its_step_with_a_hint(tmp_path: Path) -> None:
    config = _nan_config(tmp_path, bad_rows=200)
    result = subprocess.run(
        [sys.executable, "-m", "megalith", "train", config, "-o", "run"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "at step 1 " in result.stderr and "train.optimizer.lr" in result.stderr
    assert "extreme values (x)" in result.stderr  # names the input columns to check
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_on_nan_skip_skips_bad_steps_and_finishes(tmp_path: Path) -> None:
    config = _nan_config(tmp_path, bad_rows=3, on_nan="skip", max_skipped_steps=100)
    result = subprocess.run(
        [sys.executable, "-m", "megalith", "train", config, "-o", "run"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    weights = load_file(tmp_path / "run" / "model.safetensors")
    assert all(torch.isfinite(t).all() for t in weights.values())


def test_resume_without_checkpoint_starts_over(tmp_path: Path) -> None:
    import megalith as mg

    mg.train(
        REPO / "examples" / "breast_cancer.yaml",
        output_dir=tmp_path / "run",
        overrides=["train.epochs=1"],
    )
    for folder in (tmp_path / "run" / "checkpoints").glob("step-*"):
        (folder / "state.json").unlink()
    with pytest.warns(UserWarning, match="skipping checkpoint"):
        run = mg.train(resume=tmp_path / "run")
    assert run.metrics["training"]["epochs"] == 1
