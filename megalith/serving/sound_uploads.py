"""What a sound upload may be: the content types libsndfile reads here, and how long it may last.

The content types follow the formats this machine's libsndfile reads
(`soundfile.available_formats()`: WAV, FLAC, OGG and, with libsndfile >= 1.1, MP3 ...), so a
server answers 415 only for what it could not decode, listing what it takes. The duration is
read from the file's header (frames / sample rate) before any sample is decoded: a compressed
upload within the byte limit could otherwise decode to hours of audio (gigabytes of floats).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from fastapi import HTTPException

from megalith.runtime.transcription import MIN_SAMPLE_RATE
from megalith.serving.sound_header import UnreadableSoundError, read_sound_header

_TYPES_OF_FORMAT = {
    "WAV": ("audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave"),
    "FLAC": ("audio/flac", "audio/x-flac"),
    "OGG": ("audio/ogg", "audio/opus"),
    "MP3": ("audio/mpeg", "audio/mp3"),
    "AIFF": ("audio/aiff", "audio/x-aiff"),
    "AU": ("audio/basic",),
    "CAF": ("audio/x-caf",),
}
"""libsndfile's major formats and the MIME types (RFC 2046, RFC 3003, RFC 5334, ...) they are
sent as."""
ANY_BYTES = "application/octet-stream"
"""A body of unnamed type: read as whatever libsndfile recognises."""


@cache
def audio_content_types() -> tuple[str, ...]:
    """The content types of a raw recording body this machine decodes (and ANY_BYTES)."""
    import soundfile

    formats = soundfile.available_formats()
    readable = [
        kind for name, kinds in _TYPES_OF_FORMAT.items() if name in formats for kind in kinds
    ]
    return (*readable, ANY_BYTES)


def refuse_content_type(kind: str) -> HTTPException:
    """415 for a body of content type `kind`, listing what is taken."""
    taken = ", ".join(audio_content_types())
    return HTTPException(
        415,
        f"Content-Type {kind or '(none)'}: send a recording as the body with one of {taken}, "
        "or as a file field of a multipart/form-data form",
    )


def check_durations(named: Sequence[tuple[str, bytes]], max_seconds: float) -> None:
    """Refuse a recording whose header declares more than `max_seconds` of audio, before it is
    decoded; a header libsndfile cannot read, or a rate below MIN_SAMPLE_RATE, is left to the
    reader's 422.

    Raises:
        HTTPException: 413 naming the upload, its duration and the limit.
    """
    for name, data in named:
        try:
            header = read_sound_header(data)
        except UnreadableSoundError:
            continue  # the reader names what is wrong with it (422)
        if header.sample_rate < MIN_SAMPLE_RATE:
            continue  # the reader refuses the rate (422)
        if header.seconds > max_seconds:
            raise HTTPException(
                413,
                f"{name}: {header.seconds:,.0f} seconds of audio ({header.frames:,} samples at "
                f"{header.sample_rate} Hz); this server transcribes at most {max_seconds:g} s per "
                "recording: cut it into shorter files",
            )
