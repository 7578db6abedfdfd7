"""`megalith train --resume RUN --set train.threads=2` was refused as a change the checkpoint
cannot take ("cannot resume ... with changed train.threads (1 -> 2)"), though threads, like
train.device, only say where and how fast the same training runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from megalith.errors import ConfigError
from megalith.training.resume import check_resume_changes


def test_a_resume_may_change_the_cpu_threads() -> None:
    stored = {"train": {"epochs": 2, "threads": 1}, "model": {"arch": "asr", "dim": 48}}
    check_resume_changes(stored, {**stored, "train": {"epochs": 4, "threads": 2}}, Path("r"))
    check_resume_changes(stored, {**stored, "train": {"epochs": 2, "threads": None}}, Path("r"))


def test_a_resume_still_refuses_a_changed_model() -> None:
    stored = {"train": {"epochs": 2, "threads": 1}, "model": {"arch": "asr", "dim": 48}}
    changed = {**stored, "model": {"arch": "asr", "dim": 96}}
    with pytest.raises(ConfigError, match=r"changed model.dim \(48 -> 96\)"):
        check_resume_changes(stored, changed, Path("r"))
