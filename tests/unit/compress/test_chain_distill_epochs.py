"""`distill_epochs` sets the distilled student's train.epochs through the chain."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from megalith.compress.chain import named_step
from megalith.compress.settings import validate_settings
from megalith.errors import ConfigError


@pytest.mark.parametrize("epochs", [None, 3])
def test_the_distill_step_passes_distill_epochs(
    epochs: int | None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: dict[str, Any] = {}

    def fake(run: object, folder: Path, **kwargs: Any) -> str:
        seen.update(kwargs)
        return "student"

    monkeypatch.setattr(importlib.import_module("megalith.compress.distill"), "distill_run", fake)
    settings = validate_settings({"steps": ["distill"], "distill_epochs": epochs})
    step = named_step("distill", settings, {})
    assert step.apply(object(), tmp_path, Console(quiet=True)) == "student"  # type: ignore[arg-type]
    assert seen["epochs"] == epochs
    assert seen["width"] == 0.5


def test_distill_epochs_below_one_is_refused_with_its_key() -> None:
    with pytest.raises(
        ConfigError, match=r"compress\.distill_epochs: .*greater than or equal to 1"
    ):
        validate_settings({"steps": ["distill"], "distill_epochs": 0})
