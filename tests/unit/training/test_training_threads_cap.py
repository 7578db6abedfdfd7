"""train.threads above the machine's cores: capped with a one-line note before step 0 (a config
written on a big machine still trains on a small one); zero or less is a config error."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
import yaml
from conftest import make_table
from rich.console import Console

from megalith.config import validate_config
from megalith.device import threads, threads_notice, usable_threads
from megalith.errors import ConfigError
from megalith.pipeline import train

CONFIG = {
    "name": "tiny",
    "data": {"source": "table.csv"},
    "inputs": [{"name": "size", "type": "number"}],
    "outputs": [{"name": "label", "type": "category"}],
    "model": {"arch": "mlp", "hidden": [8]},
}


def test_a_count_above_the_cores_is_capped_and_noted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert usable_threads(1000) == 2
    assert usable_threads(1) == 1 and usable_threads(None) is None
    assert threads_notice(1000) == (
        "train.threads 1000: more than the 2 CPU core(s) here; training uses 2"
    )
    assert threads_notice(2) is None and threads_notice(None) is None
    before = torch.get_num_threads()
    with threads(1000):
        assert torch.get_num_threads() == 2
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("count", [0, -3])
def test_zero_or_fewer_threads_is_a_config_error_naming_the_key(count: int) -> None:
    with pytest.raises(ConfigError, match=r"train\.threads"):
        validate_config({**CONFIG, "train": {"threads": count}})


@pytest.mark.slow  # trains one epoch of a tiny MLP
def test_training_notes_the_cap_before_step_0_and_keeps_the_configured_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    make_table(rows=40).to_csv(tmp_path / "table.csv", index=False)
    out = io.StringIO()
    config = {**CONFIG, "data": {"source": str(tmp_path / "table.csv")}}
    train(
        {**config, "train": {"epochs": 1, "threads": 1000}},
        output_dir=tmp_path / "run",
        console=Console(file=out, width=200),
    )

    printed = out.getvalue()
    note = "train.threads 1000: more than the 1 CPU core(s) here; training uses 1"
    assert note in printed
    assert printed.index(note) < printed.index("train /")  # before the run's summary line
    written = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert written["train"]["threads"] == 1000  # the config still says what was asked for
