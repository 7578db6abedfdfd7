"""Transcription input edges found by trying it: an empty list gives no transcripts (not numpy's
"need at least one array to concatenate"); samples holding NaN say so rather than blaming a
fine shape; a bundle (CTC head only) refuses --ctc-weight below 1 instead of ignoring it; and
--ctc-weight 0 is refused by the option itself, as decode_ctc_weight is above 0."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from megalith.errors import DataError
from megalith.runtime.transcription import SpeechWindows, read_recordings, transcribe_waves
from tests.conftest import run_cli


def test_no_recordings_give_no_transcripts() -> None:
    windows = SpeechWindows.of(8000, 800, 400, 0.0)

    def forward(batch: np.ndarray) -> np.ndarray:
        raise AssertionError("nothing to run")

    assert read_recordings([], 8000, None) == []
    assert transcribe_waves([], forward, windows, lambda scores: [1]) == []


def test_samples_with_nan_are_refused_saying_nan_not_shape() -> None:
    wave = np.zeros(8000, dtype=np.float32)
    wave[3] = np.nan
    with pytest.raises(DataError, match=r"recording 0: 1 of its 8000 samples are NaN"):
        read_recordings([wave], 8000, None)


def test_a_bundle_refuses_a_ctc_weight_below_one(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "bundle.json").write_text(json.dumps({"task": "asr"}))
    outcome = run_cli("transcribe", bundle, tmp_path / "a.wav", "--ctc-weight", "0.3")
    assert outcome.code == 2
    assert "--ctc-weight 0.3: a bundle holds the encoder and CTC head only" in outcome.stderr
    assert "Traceback" not in outcome.stderr


def test_ctc_weight_zero_is_refused_by_the_option(tmp_path: Path) -> None:
    outcome = run_cli("transcribe", tmp_path, tmp_path / "a.wav", "--ctc-weight", "0")
    assert outcome.code == 2 and "--ctc-weight 0.0: give a weight above 0" in outcome.stderr


def test_lm_on_a_hybrid_says_the_attention_decoder_is_left_out() -> None:
    from types import SimpleNamespace

    from megalith.cli_transcribe import implied_beam_note

    hybrid = SimpleNamespace(beam_size=1, ctc_weight=0.3, decode_ctc_weight=None)
    note = implied_beam_note(hybrid, None, Path("runs/lm"))
    assert note is not None and "the run decodes greedily" not in note
    assert "of 8 prefixes" in note and "attention decoder is not used" in note
    wide = SimpleNamespace(beam_size=4, ctc_weight=0.3, decode_ctc_weight=None)
    note = implied_beam_note(wide, None, Path("runs/lm"))
    assert note is not None and "prefixes" not in note and "attention decoder" in note
    ctc_alone = implied_beam_note(hybrid, None, Path("runs/lm"), ctc_weight=1.0)
    assert ctc_alone is not None and "attention decoder" not in ctc_alone


def test_unreadable_bytes_name_mp3_among_the_formats_taken() -> None:
    with pytest.raises(DataError, match=r"recording 0: cannot be read as audio .*OGG or MP3"):
        read_recordings([b"junk"], 8000, None)
