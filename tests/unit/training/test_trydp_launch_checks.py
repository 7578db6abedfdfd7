"""`megalith train CONFIG --devices 2` reads and checks the config before torchrun starts: a
bad key, or private training with strategy fsdp, is one error line (it was one per process,
after torchrun's own warnings), exit code 2, and no run directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

CONFIG = {
    "name": "t",
    "data": {"source": "t.csv"},
    "inputs": [{"name": "x", "type": "number"}],
    "outputs": [{"name": "y", "type": "category"}],
    "train": {"strategy": "fsdp", "privacy": {"epsilon": 3.0}},
}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.epochs=2", "error: train.strategy: fsdp shards the weights"),
        ("train.privacy.epsilon=-1", "train.privacy.epsilon: input should be greater than 0"),
    ],
)
def test_a_config_error_is_said_once_before_the_processes_start(
    tmp_path: Path, override: str, message: str
) -> None:
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(CONFIG))
    command = [sys.executable, "-m", "megalith", "train", "c.yaml", "--devices", "2"]
    command += ["--set", override, "-o", "run"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    env.pop("WORLD_SIZE", None)
    done = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 2
    assert message in done.stderr
    assert done.stderr.count("error:") == 1 and "torch/distributed" not in done.stderr
    assert not (tmp_path / "run").exists()
