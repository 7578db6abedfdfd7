"""`megalith audit-privacy RUN --compare RUN`: the run itself is no comparison (its figures were
written twice to privacy-audit.json and the report, as two runs); refused naming both, before
any row is read. And a split seed left unset is named as such, not as Python's None."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from megalith.errors import DataError
from megalith.privacy import audit_privacy
from megalith.privacy.audit import _what_differs
from megalith.run import Run


def _run(path: Path) -> Run:
    run = Run(path, None, None, torch.nn.Linear(1, 1))  # type: ignore[arg-type]
    run.data_splits = lambda: pytest.fail("no row is read")  # type: ignore[method-assign]
    return run


def test_the_run_itself_is_refused(tmp_path: Path) -> None:
    (tmp_path / "runs" / "private").mkdir(parents=True)
    run = _run(tmp_path / "runs" / "private")
    same = _run(tmp_path / "runs" / ".." / "runs" / "private")
    with pytest.raises(DataError, match=r"^--compare .*: that is .* itself, .*leave --compare"):
        audit_privacy(run, same, write=False)


def test_an_unset_split_seed_is_named_with_the_seed_used() -> None:
    def run(split_seed: int | None, seed: int) -> SimpleNamespace:
        split = SimpleNamespace(model_dump=lambda: {"val": 0.1, "test": 0.1, "seed": split_seed})
        data = SimpleNamespace(source="table.csv", split=split)
        return SimpleNamespace(config=SimpleNamespace(data=data, seed=seed))

    found = _what_differs(run(None, 0), run(7, 0))  # type: ignore[arg-type]
    assert found == "data.split.seed unset (seed 0) vs 7"
