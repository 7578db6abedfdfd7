"""The one reader of an upload's sound header, shared by /transcribe and /predict's audio fields."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile

from megalith.serving.sound_header import SoundHeader, UnreadableSoundError, read_sound_header


def _flac(samples: int, rate: int) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, np.zeros(samples, np.float32), rate, format="FLAC")
    return buffer.getvalue()


def test_the_header_gives_rate_frames_and_seconds_without_decoding() -> None:
    header = read_sound_header(_flac(24000, 16000))

    assert header == SoundHeader(sample_rate=16000, frames=24000)
    assert header.seconds == 1.5


@pytest.mark.parametrize("data", [b"", b"RIFF....WAVEfmt nonsense", b"\x00" * 64])
def test_bytes_that_are_not_a_sound_file_are_refused_with_libsndfiles_reason(data: bytes) -> None:
    with pytest.raises(UnreadableSoundError) as refused:
        read_sound_header(data)
    assert str(refused.value)  # the reason, for the 422 message
