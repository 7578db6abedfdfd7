"""A recognizer's `model.lm` is written into the run's config.yaml as an absolute path, like the
data source, so a run trained with `lm: runs/lm` transcribes and evaluates from any folder."""

from __future__ import annotations

from pathlib import Path

from megalith.config import load_config
from megalith.pipeline import _with_absolute_paths


def test_relative_lm_run_is_made_absolute(tmp_path: Path) -> None:
    config, _ = load_config(
        {
            "data": {"source": "clips.csv"},
            "inputs": [{"name": "audio", "type": "audio", "sample_rate": 8000, "duration": 1.0}],
            "outputs": [{"name": "text", "type": "text", "tokenizer": "char"}],
            "model": {"arch": "asr", "beam_size": 4, "lm": "runs/lm"},
        }
    )
    written = _with_absolute_paths(config, tmp_path)
    assert written.model.lm == str((tmp_path / "runs" / "lm").resolve())  # type: ignore[union-attr]
    assert written.data.source == str((tmp_path / "clips.csv").resolve())


def test_a_recognizer_without_lm_keeps_none(tmp_path: Path) -> None:
    config, _ = load_config(
        {
            "data": {"source": "clips.csv"},
            "inputs": [{"name": "audio", "type": "audio", "sample_rate": 8000, "duration": 1.0}],
            "outputs": [{"name": "text", "type": "text", "tokenizer": "char"}],
            "model": {"arch": "asr"},
        }
    )
    assert _with_absolute_paths(config, tmp_path).model.lm is None  # type: ignore[union-attr]
