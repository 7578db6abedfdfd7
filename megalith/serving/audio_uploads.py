"""Audio fields of a /predict request: a sound file's bytes, base64-encoded, checked before the
model sees them.

A field holds the whole file (WAV, FLAC, OGG/Vorbis, ... whatever libsndfile reads), so the
server never opens a path a client names. Each upload's header is read from memory first: bytes
that are not base64, not a sound file, empty, or longer than `max_seconds` get a 422 naming the
row and the field (`rows.3.audio`), before any row of the request is predicted. The checked bytes
go to the audio input's encoder, which decodes, mixes down, resamples and pads them exactly as it
does a file in `megalith predict` (megalith.data.features.audio).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from megalith.data.preprocess import Preprocessor
from megalith.errors import DataError
from megalith.serving.sound_header import UnreadableSoundError, read_sound_header

MIN_MAX_SECONDS = 30.0
"""The longest upload is 4 times the model's clip `duration`, and at least this many seconds."""


class AudioUploads:
    """Decodes the audio fields of request records (`decode`, in a worker thread).

    Args:
        preprocessor: the run's; its audio inputs give the columns and their clip length.
    """

    def __init__(self, preprocessor: Preprocessor) -> None:
        self.max_seconds: dict[str, float] = {}
        for encoder in preprocessor.inputs:
            config: Any = encoder.config
            if config.type != "audio":
                continue
            settings: Any = getattr(encoder, "settings", None)
            rate = settings.sample_rate if settings is not None else 1
            clip = getattr(encoder, "samples", 0) / rate
            self.max_seconds[config.name] = max(MIN_MAX_SECONDS, 4 * clip)

    def decode(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The records with each audio field as the sound file's bytes.

        Raises:
            DataError: an audio field is not base64 of a readable, non-empty sound file within
                the length limit (naming the row and the field).
        """
        if not self.max_seconds:
            return records
        return [
            record
            | {
                column: _sound(record[column], f"rows.{row}.{column}", most)
                for column, most in self.max_seconds.items()
            }
            for row, record in enumerate(records)
        ]


def _sound(value: str, where: str, max_seconds: float) -> bytes:
    """Base64 text -> the sound file's bytes, its header checked."""
    try:  # line breaks, as the base64 tool writes them, are not part of the data
        data = base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise DataError(
            f"{where}: expected the sound file's bytes, base64-encoded (WAV, FLAC or OGG)"
        ) from None
    try:
        header = read_sound_header(data)
    except UnreadableSoundError as error:
        raise DataError(
            f"{where}: the bytes are not a sound file soundfile can read ({error}); "
            "send WAV, FLAC or OGG"
        ) from None
    if header.frames <= 0 or header.sample_rate <= 0:
        raise DataError(f"{where}: the recording holds no samples")
    if header.seconds > max_seconds:
        raise DataError(
            f"{where}: the recording lasts {header.seconds:.1f} s, more than this model accepts "
            f"({max_seconds:g} s)"
        )
    return data
