"""`python -m megalith.data.spoken_digits` with impossible settings: one line, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from megalith.data.spoken_digits import main


def test_too_few_speakers_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stop:
        main([str(tmp_path / "digits"), "--speakers", "3"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: spoken digits: 3 speakers cannot hold"), err
    assert "Traceback" not in err
