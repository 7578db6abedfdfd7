"""`init` on recordings with transcripts wrote, beside its recognizer, the audio classifier's
note ("a CRNN (conv + bidirectional GRU) ...") and its `variable_length: true`, neither of
which holds for model.arch asr."""

from __future__ import annotations

import pandas as pd

from megalith.data.infer_speech import speech_config


def test_a_recognizers_config_keeps_no_classifier_note_or_setting() -> None:
    frame = pd.DataFrame({"audio": ["a.wav", "b.wav"], "text": ["one two", "three four"]})
    audio = {"name": "audio", "type": "audio", "sample_rate": 8000, "variable_length": True}
    notices = [
        "column 'audio' holds sound files: typed as audio at 8000 Hz, 1.0 s per clip",
        "column 'audio': a CRNN (conv + bidirectional GRU) over its log-mel spectrogram",
        "column 'split' says train / val / test per row: used as data.split",
    ]
    config = {"inputs": [audio], "outputs": [], "model": {}, "train": {}}
    written = speech_config(config, frame, audio, "text", None, notices)
    assert written["model"]["arch"] == "asr"
    assert "variable_length" not in written["inputs"][0]
    assert not any("CRNN" in notice for notice in notices)
    assert any(notice.startswith("column 'split'") for notice in notices)
    assert any("speech recognizer" in notice for notice in notices)
