"""`megalith train --devices 2` with a mistake its processes find only after they start (a
column the table lacks: the launcher checks the config, not the data): one error line, the
processes' own exit code, none of torchrun's log lines, and no run directory."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import make_table

from tests.multiprocess import megalith_train

pytestmark = pytest.mark.slow  # torchrun and two processes that import torch


def test_an_error_every_process_meets_is_said_once(tmp_path: Path) -> None:
    make_table(rows=60).to_csv(tmp_path / "table.csv", index=False)
    config = {
        "data": {"source": "table.csv"},
        "inputs": [{"name": "size", "type": "number"}, {"name": "nosuch", "type": "category"}],
        "outputs": [{"name": "label", "type": "category"}],
        "model": {"arch": "mlp"},
        "train": {"epochs": 1},
    }
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(config))

    done = megalith_train(tmp_path, "bad.yaml", "--devices", "2", "--output-dir", "runs/bad")

    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'table.csv'}: column 'nosuch' not found; the columns are: id, "
        "size, color, member, constant, label. Fix the name in the config's inputs / outputs."
    ]
    assert not (tmp_path / "runs").exists()
