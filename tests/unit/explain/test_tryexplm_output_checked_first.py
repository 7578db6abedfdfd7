"""`megalith explain` checks its --output folder before explaining: an earlier explanation
without --overwrite, a missing parent folder or a file used to fail only after every row had
been explained (minutes on a language model). It is checked after the options (a wrong --target
is still the error given), before the work."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli

import megalith.explain
from megalith.run import Run


def _explain_run(run: Any, *args: Any, ready: Any = None, **kwargs: Any) -> Any:
    ready()  # the options checked: the folder is checked next, before any work
    raise AssertionError("explained before the output folder was checked")


@pytest.fixture
def loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Run, "load", classmethod(lambda cls, path: object()))
    monkeypatch.setattr(megalith.explain, "explain_run", _explain_run)


def test_an_earlier_explanation_is_refused_before_explaining(
    loaded: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "run" / "explain").mkdir(parents=True)
    for name in ("summary.json", "explanations.jsonl"):
        (tmp_path / "run" / "explain" / name).write_text("{}\n")
    outcome = run_cli("explain", "run")
    assert outcome.code == 2
    assert outcome.stderr.strip() == (
        "error: --output run/explain already holds explanations; pass --overwrite to replace them"
    )


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("missing/out", "error: --output missing/out: its folder missing does not exist"),
        ("a-file", "error: --output a-file is a file; choose a folder"),
    ],
)
def test_a_bad_output_is_refused_before_explaining(
    loaded: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, given: str, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "run").mkdir()
    (tmp_path / "a-file").write_text("x")
    outcome = run_cli("explain", "run", "--output", given)
    assert outcome.code == 2
    assert outcome.stderr.strip() == message
