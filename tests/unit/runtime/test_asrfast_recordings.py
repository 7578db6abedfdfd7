"""What transcription takes and writes: anything but paths, bytes or samples is refused naming
what is accepted; transcripts are always valid UTF-8 (a byte-level BPE recognizer can write half
a character); a stop event ends transcription before its next forward pass; --lm without
--beam-size says which beam it implies."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from megalith.cli_transcribe import implied_beam_note
from megalith.data.tokenizers import fit_tokenizer
from megalith.errors import DataError
from megalith.runtime.transcription import (
    SpeechWindows,
    TranscriptionStopped,
    read_recordings,
    transcribe_waves,
    valid_text,
)


@pytest.mark.parametrize("recordings", [[123], [None], [["a.wav"]], [{"audio": "a.wav"}]])
def test_a_recording_of_another_type_is_refused_naming_what_is_taken(recordings) -> None:
    with pytest.raises(DataError, match=r"recording 0: got \w+; each recording is a sound file"):
        read_recordings(recordings, 8000, None)


@pytest.mark.parametrize("recordings", ["a.wav", Path("a.wav"), b"RIFF", 123])
def test_one_recording_not_in_a_list_is_refused_saying_give_a_list(recordings) -> None:
    with pytest.raises(DataError, match=r"give a list of recordings .*transcribe\(\['a.wav'\]\)"):
        read_recordings(recordings, 8000, None)


def test_half_a_character_from_a_byte_level_bpe_becomes_a_replacement_character() -> None:
    tokenizer = fit_tokenizer("bpe", ["naïve café ☃ snow", "héllo wörld"], 300, False)
    snowman = tokenizer.encode(["☃"])[0]
    halves = [tokenizer.decode([snowman[0]]) if len(snowman) > 1 else "\ufffd", "\udce2 x"]
    for text in halves:
        written = valid_text(text)
        written.encode("utf-8")  # valid: no UnicodeEncodeError
        assert "\ufffd" in written
        assert json.loads(json.dumps({"text": written}, ensure_ascii=False)) == {"text": written}
    assert valid_text("naïve ☃") == "naïve ☃"


def test_a_set_stop_event_ends_transcription_before_the_next_forward_pass() -> None:
    stop, passes = threading.Event(), []

    def forward(windows: np.ndarray) -> np.ndarray:
        passes.append(len(windows))
        stop.set()  # as a server's time limit would, while the first pass runs
        return np.zeros((len(windows), 2, 3), dtype=np.float32)

    windows = SpeechWindows.of(8000, 800, 400, 0.0)
    wave = np.ones(800 * 40, dtype=np.float32)
    with pytest.raises(TranscriptionStopped):
        transcribe_waves([wave], forward, windows, lambda s: [len(s)], 1024, stop)
    assert passes == [8]  # one pass of 8 windows, not the 40 at once nor the rest
    assert transcribe_waves([wave], forward, windows, lambda s: [len(s)], 1024) == [[80]]


def test_lm_without_beam_size_says_the_beam_it_implies() -> None:
    greedy, beam = SimpleNamespace(beam_size=1), SimpleNamespace(beam_size=4)
    note = implied_beam_note(greedy, None, Path("runs/lm"))
    assert note is not None and "keeps 8 prefixes" in note and "--beam-size" in note
    assert implied_beam_note(greedy, 8, Path("runs/lm")) is None  # asked for a beam
    assert implied_beam_note(beam, None, Path("runs/lm")) is None  # the run's own beam
    assert implied_beam_note(greedy, None, None) is None
