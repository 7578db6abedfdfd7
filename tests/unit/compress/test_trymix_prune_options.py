"""The pruning options of `megalith compress` choose the prune step; they are never ignored."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest

from megalith.cli_compress import _steps, compress
from megalith.errors import MegalithError


@pytest.fixture
def seen_steps(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The steps `megalith compress` hands to megalith.compress.compress, which then stops."""
    seen: dict[str, Any] = {}

    def fake(run: Path, steps: list[str] | None, *args: Any, **kwargs: Any) -> None:
        seen["steps"] = steps
        raise SystemExit(0)

    monkeypatch.setattr(importlib.import_module("megalith.compress"), "compress", fake)
    return seen


@pytest.mark.parametrize(
    "options",
    [{"prune_by": "channels"}, {"finetune_epochs": 2}, {"prune": 0.3}],
)
def test_a_pruning_option_alone_means_the_prune_step(
    options: dict[str, Any], seen_steps: dict[str, Any], tmp_path: Path
) -> None:
    with pytest.raises(SystemExit):
        compress(tmp_path, **options)
    assert seen_steps["steps"] == ["prune"]


def test_steps_without_prune_refuse_a_pruning_option(tmp_path: Path) -> None:
    with pytest.raises(MegalithError, match=r"--prune-by set the prune step.*add prune"):
        compress(tmp_path, steps="quantize", prune_by="channels")


def test_no_option_leaves_the_steps_to_the_config() -> None:
    assert _steps(None, False, None, None) is None
    assert _steps(None, False, "int8", None) == ["quantize"]


def test_with_a_config_the_pruning_details_leave_its_steps_alone(
    seen_steps: dict[str, Any], tmp_path: Path
) -> None:
    with pytest.raises(SystemExit):
        compress(tmp_path, prune_by="channels", config=tmp_path / "c.yaml")
    assert seen_steps["steps"] is None  # the config's steps (say prune, quantize) stay
