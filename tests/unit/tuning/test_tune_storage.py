"""Where a study lives: the password of a database URL never shown, one tuner per study folder,
and the --timeout durations."""

from __future__ import annotations

from pathlib import Path

import pytest

from megalith.cli_tune import parse_duration
from megalith.errors import MegalithError, RunError
from megalith.tuning.storage import hold_study_folder, shown_url


def test_a_database_password_is_never_shown() -> None:
    url = "postgresql://tuner:s3cret@db.example:5432/optuna"
    assert shown_url(url) == "postgresql://tuner:***@db.example:5432/optuna"
    assert shown_url("postgresql://tuner@db/optuna") == "postgresql://tuner@db/optuna"
    assert shown_url(None) == "study.journal" and shown_url("runs/s.journal") == "runs/s.journal"


def test_a_second_tuner_on_the_same_study_folder_is_refused(tmp_path: Path) -> None:
    held = hold_study_folder(tmp_path)
    try:
        with pytest.raises(RunError, match="another `megalith tune` is running on this study"):
            hold_study_folder(tmp_path)
    finally:
        held.close()
    hold_study_folder(tmp_path).close()  # free again once the first lets go


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("30m", 1800), ("1.5h", 5400)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_a_bad_duration_is_refused() -> None:
    with pytest.raises(MegalithError, match="--timeout 5 days: give a duration like 90s"):
        parse_duration("5 days")
