"""A recording that is not audio is refused in libsndfile's own words, without the address of
the in-memory buffer soundfile names ("Error opening <_io.BytesIO object at 0x...>"), which
the server used to send back to clients; empty bytes say they are empty."""

from __future__ import annotations

from pathlib import Path

import pytest

from megalith.data.features.audio import _unreadable
from megalith.errors import DataError
from megalith.runtime.transcription import read_sound


def test_bytes_that_are_not_audio_name_the_upload_not_a_buffer() -> None:
    with pytest.raises(DataError) as caught:
        read_sound(b"hello, not a recording\n", 8000, "file (notes.txt)")
    message = str(caught.value)
    assert message.startswith("file (notes.txt): cannot be read as audio (")
    assert "BytesIO" not in message and "0x" not in message


def test_empty_bytes_are_an_empty_recording() -> None:
    with pytest.raises(DataError, match=r"^body: the recording is empty \(0 bytes\)"):
        read_sound(b"", 8000, "body")


def test_a_table_cell_that_is_not_audio_says_why_once(tmp_path: Path) -> None:
    """The table's error names the file itself; libsndfile's "Error opening 'PATH'" is dropped."""
    import soundfile

    notes = tmp_path / "notes.wav"
    notes.write_text("not a recording\n")
    with pytest.raises(RuntimeError) as caught:
        soundfile.info(str(notes))
    reason = _unreadable(caught.value)
    assert reason.startswith("cannot be read as audio (") and str(notes) not in reason
