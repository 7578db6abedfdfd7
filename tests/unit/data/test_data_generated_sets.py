"""What the generated sound sets share: the cached copy behind `builtin:`, the `python -m` CLI."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import soundfile

from megalith.data.generated_sets import cached_table
from megalith.data.spoken_digit_strings import main as strings_main
from megalith.data.spoken_digits import main as digits_main


def test_the_cached_table_is_made_once_and_read_with_absolute_audio_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEGALITH_CACHE", str(tmp_path / "cache"))
    made = []

    def make(out: Path) -> None:
        made.append(out)
        pd.DataFrame({"audio": ["clips/a.wav"], "digit": [3]}).to_csv(out / "t.csv", index=False)

    first = cached_table("set-v1", "t.csv", make, "a test set")
    second = cached_table("set-v1", "t.csv", make, "a test set")

    assert len(made) == 1  # the second read finds the copy
    folder = tmp_path / "cache" / "set-v1"
    assert first["audio"].tolist() == [str(folder / "clips/a.wav")]
    assert second.equals(first)


def test_the_strings_command_passes_its_options_and_prints_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "strings"
    options = ["--speakers", "2", "--strings", "1", "--test-speakers", "0", "--val-speakers", "1"]
    strings_main([str(out), *options, "--sample-rate", "16000"])

    assert capsys.readouterr().out == f"wrote {out / 'strings.csv'}\n"
    table = pd.read_csv(out / "strings.csv")
    assert table["speaker"].tolist() == ["s00", "s01"]
    assert table["split"].tolist() == ["train", "val"]
    assert soundfile.info(str(out / table["audio"][0])).samplerate == 16000


def test_an_unknown_format_is_refused_by_the_digits_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stop:
        digits_main([str(tmp_path), "--format", "mp3"])
    assert stop.value.code == 2
    assert "invalid choice: 'mp3'" in capsys.readouterr().err
