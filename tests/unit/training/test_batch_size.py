"""batch_size: auto — the search for the largest batch that fits, and what it means on CPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

import megalith as mg
from megalith.config import load_config
from megalith.data.preprocess import Preprocessor
from megalith.errors import ConfigError
from megalith.models import build_model
from megalith.training.batch_size import (
    CPU_BATCH_SIZE,
    auto_limit,
    find_batch_size,
    largest_fitting,
)


def test_doubles_while_it_fits_and_keeps_the_largest_power_of_two() -> None:
    tried: list[int] = []

    def fits(size: int) -> bool:
        tried.append(size)
        return size <= 300

    assert largest_fitting(fits, limit=10_000) == 256
    assert tried == [16, 32, 64, 128, 256, 512]


def test_a_small_train_split_caps_the_batch() -> None:
    assert largest_fitting(lambda size: True, limit=40) == 40
    assert largest_fitting(lambda size: True, limit=5) == 5


def test_auto_leaves_every_epoch_enough_steps() -> None:
    # a 10,117-row split fitted whole in an H200's memory: one step an epoch learned nothing
    assert auto_limit(10_117) == 256  # 10117 // 32 = 316, rounded down to a power of two
    assert auto_limit(10_117, processes=2) == 128
    assert auto_limit(1_000_000) == 16_384
    assert auto_limit(300) == 16  # small splits still get the first batch tried
    assert auto_limit(5) == 5
    assert largest_fitting(lambda size: True, limit=auto_limit(10_117)) == 256


def test_nothing_fits_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="batch of 16 rows does not fit"):
        largest_fitting(lambda size: False, limit=1000)


def test_batch_size_must_be_positive_or_auto() -> None:
    base = {
        "data": {"source": "builtin:iris"},
        "inputs": [{"name": "sepal_length", "type": "number"}],
        "outputs": [{"name": "species", "type": "category"}],
    }
    with pytest.raises(ConfigError, match="batch_size"):
        load_config(base, ["train.batch_size=0"])
    with pytest.raises(ConfigError, match="batch_size"):
        load_config(base, ["train.batch_size=big"])
    cfg, _ = load_config(base, ["train.batch_size=auto"])
    assert cfg.train.batch_size == "auto"


def test_auto_on_cpu_is_the_default_and_is_written_into_the_run(tmp_path: Path) -> None:
    config = {
        "data": {"source": "builtin:iris"},
        "inputs": [{"name": n, "type": "number"} for n in ("sepal_length", "petal_length")],
        "outputs": [{"name": "species", "type": "category"}],
        "train": {"epochs": 2, "batch_size": "auto"},
    }
    run = mg.train(config, output_dir=tmp_path / "run")
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["train"]["batch_size"] == CPU_BATCH_SIZE
    assert run.config.train.batch_size == CPU_BATCH_SIZE


@pytest.mark.gpu
def test_auto_on_a_gpu_finds_a_batch_that_trains() -> None:
    cfg, _ = load_config(
        {
            "data": {"source": "builtin:digits"},
            "inputs": [{"name": "image", "type": "image"}],
            "outputs": [{"name": "label", "type": "category"}],
            "model": {"arch": "cnn"},
        }
    )
    from megalith.data.builtin import load_builtin

    frame = load_builtin("digits")
    pre = Preprocessor.fit(cfg.inputs, cfg.outputs, frame, base_dir=None, origin="digits")
    table = pre.transform(frame, base_dir=None, origin="digits")
    model = build_model(cfg.model, pre.input_specs, pre.output_specs)
    size = find_batch_size(model, table, cfg.outputs, torch.device("cuda"), torch.bfloat16)
    assert size >= 16 and (size & (size - 1) == 0 or size == len(table))
