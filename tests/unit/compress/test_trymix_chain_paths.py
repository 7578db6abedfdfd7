"""While a chain runs it is built in a hidden folder beside OUT; the step line says where each
step's model will be once the folder is moved into place."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console

from megalith.compress import page, record
from megalith.compress.chain import resolve_steps, run_chain
from megalith.compress.settings import CompressSettings


class _Recorder:
    def __init__(self, *args: Any) -> None:
        pass

    def measure_original(self, bundle: Path) -> None:
        pass

    def measure_step(self, name: str, result: object) -> bool:
        return True

    def retime_in_turn(self) -> None:
        pass

    def summary(self, target: Path, steps: list[str]) -> dict[str, Any]:
        return {"best": "original"}


def test_the_step_line_names_the_final_folder_and_the_staging_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(record, "Recorder", _Recorder)
    monkeypatch.setattr(page, "compression_page", lambda summary: "<html></html>")
    built: list[Path] = []

    def shrink(run: Any, folder: Path, console: Any) -> Any:
        built.append(folder)
        return run

    run: Any = SimpleNamespace(export=lambda folder: folder)
    out = io.StringIO()
    target = tmp_path / "small"
    settings = CompressSettings()
    steps = resolve_steps([shrink], settings, {})
    run_chain(
        run,
        steps,
        settings,
        target,
        bundles={},
        overwrite=False,
        console=Console(file=out, width=400),
    )
    printed = out.getvalue()
    assert f"step 1, shrink -> {target / '1-shrink'}" in printed
    assert f"built in {built[0]}" in printed and built[0].parent.parent == tmp_path
    assert target.is_dir() and not built[0].parent.exists()
