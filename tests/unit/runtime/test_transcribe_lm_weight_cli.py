"""`megalith transcribe BUNDLE --lm-weight X` without a language model: refused naming --lm."""

from __future__ import annotations

from pathlib import Path

from conftest import run_cli


def test_an_lm_weight_for_a_bundle_without_lm_is_refused_naming_lm(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bundle").mkdir()
    (tmp_path / "bundle" / "bundle.json").write_text("{}")  # refused before it is read

    outcome = run_cli("transcribe", "bundle", "a.wav", "--lm-weight", "0.8")

    assert outcome.code == 2
    assert "--lm-weight 0.8: it weighs a language model, and none is given" in outcome.stderr
    assert "--lm RUN" in outcome.stderr and "Traceback" not in outcome.stderr
