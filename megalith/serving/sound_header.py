"""A sound upload's header, read from memory: its sample rate and length before any sample is
decoded (libsndfile via soundfile). Both sound uploads read it: a raw recording sent to
/transcribe (sound_uploads) and a base64 field of a /predict row (audio_uploads)."""

from __future__ import annotations

import io
from dataclasses import dataclass


@dataclass(frozen=True)
class SoundHeader:
    """What a sound file's header declares."""

    sample_rate: int
    """Samples per second (Hz)."""
    frames: int
    """Samples per channel."""

    @property
    def seconds(self) -> float:
        """The declared duration in seconds (frames / sample_rate; 0 for a rate of 0)."""
        return self.frames / self.sample_rate if self.sample_rate > 0 else 0.0


class UnreadableSoundError(ValueError):
    """The bytes are not a sound file libsndfile reads; the message is libsndfile's reason."""


def read_sound_header(data: bytes) -> SoundHeader:
    """The header of the sound file whose bytes are `data` (WAV, FLAC, OGG, ... whatever this
    machine's libsndfile reads), without decoding its samples.

    Raises:
        UnreadableSoundError: libsndfile cannot read the bytes as a sound file.
    """
    import soundfile

    try:
        info = soundfile.info(io.BytesIO(data))
    except (RuntimeError, OSError, ValueError, TypeError) as error:
        raise UnreadableSoundError(getattr(error, "error_string", None) or str(error)) from None
    return SoundHeader(sample_rate=int(info.samplerate), frames=int(info.frames))
