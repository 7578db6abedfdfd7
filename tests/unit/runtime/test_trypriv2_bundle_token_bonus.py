"""`megalith transcribe BUNDLE --token-bonus X`: a bundle's decoding has no token bonus, so it
is refused instead of silently ignored (docs/speech_decoding.md: refused where ignored)."""

from __future__ import annotations

from pathlib import Path

from conftest import run_cli


def test_a_token_bonus_for_a_bundle_is_refused_not_ignored(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bundle").mkdir()
    (tmp_path / "bundle" / "bundle.json").write_text("{}")  # refused before it is read

    outcome = run_cli("transcribe", "bundle", "a.wav", "--beam-size", "8", "--token-bonus", "1")

    assert outcome.code == 2
    assert "--token-bonus 1: a bundle's decoding adds no token bonus" in outcome.stderr
    assert "run directory" in outcome.stderr and "Traceback" not in outcome.stderr
