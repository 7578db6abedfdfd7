"""Recordings of any length -> CTC frame scores -> token ids, around any forward pass.

    sound file or bytes ─► mono float32 at the model's rate (read_sound)
      ─► windows of the model's clip length, overlapping (megalith.runtime.windows)
      ─► forward: (N, window) waveforms -> (N, T', V) CTC logits (PyTorch or ONNX Runtime)
      ─► frames stitched per recording ─► decode (greedy or beam, megalith.runtime.ctc)

Both `Run.transcribe` (torch) and a bundle (ONNX Runtime) run this code; only `forward`
differs. Torch-free.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from megalith.errors import DataError
from megalith.runtime.windows import cut_windows, stitch_frames

Forward = Callable[[np.ndarray], np.ndarray]
"""float32 waveforms (N, window) -> CTC logits (N, T', V)."""
Decode = Callable[[np.ndarray], list[int]]
"""Frame scores (T, V) -> token ids (megalith.runtime.ctc.greedy_ctc with its blank, ...)."""

Recording = str | Path | bytes | np.ndarray
"""A sound file's path, its bytes (WAV, FLAC, OGG), or float32 samples (n,) at the model's
sample rate."""

ACCEPTED = (
    "a sound file's path (str or Path), its bytes (WAV, FLAC, OGG, ...) or float32 samples "
    "at the model's rate (a 1-D numpy array)"
)
"""What a recording may be, as errors say it."""

MIN_SAMPLE_RATE = 4000
"""Recordings sampled slower than this are refused: no speech band fits, and resampling a few
bytes declared at 1 Hz up to the model's rate would fill memory."""

STOP_WINDOWS = 8
"""With a `stop` event, windows per forward pass: how soon a stopped transcription ends."""


StopEvent = threading.Event
"""Set from another thread (a server's time limit) to end a transcription before its next
window."""


class TranscriptionStopped(RuntimeError):
    """The `stop` event was set (a server's time limit passed): the transcription ended early."""


OVERLAP_SHARE = 0.25
"""Default overlap between windows, as a share of the window."""


@dataclass(frozen=True)
class SpeechWindows:
    """How a recognizer reads long recordings."""

    sample_rate: int
    """Samples per second the model was trained on."""
    window: int
    """Samples the model reads at once (its audio input's `duration`)."""
    frame: int
    """Samples per output frame: the hop length times the encoder's subsampling."""
    overlap: int
    """Samples shared by neighbouring windows; half of it is dropped on each side."""

    @classmethod
    def of(
        cls, sample_rate: int, window: int, frame: int, overlap_seconds: float | None = None
    ) -> SpeechWindows:
        """With `overlap_seconds` (default: a quarter of the window), kept below the window.

        Raises:
            DataError: an overlap that leaves less than a frame between windows (the option
                is named `--overlap`).
        """
        if overlap_seconds is None:
            overlap = int(window * OVERLAP_SHARE)
        else:
            overlap = round(overlap_seconds * sample_rate)
        if not 0 <= overlap <= window - frame:
            most = (window - frame) / sample_rate
            raise DataError(
                f"--overlap {overlap_seconds}: must be between 0 and {most:.3f} seconds (the "
                f"model's window of {window / sample_rate:.3f} s less one frame)"
            )
        return cls(sample_rate, window, frame, overlap)


def read_sound(source: str | Path | bytes, sample_rate: int, where: str) -> np.ndarray:
    """A sound file (path or its bytes: WAV, FLAC, OGG) as float32 (samples,) mono at
    `sample_rate` (channels averaged, resampled with soxr).

    Raises:
        DataError: naming `where`: missing, unreadable, empty, sampled below 4 kHz, or NaN /
            infinite samples.
    """
    import soundfile
    import soxr

    if isinstance(source, (str, Path)):
        if not Path(source).is_file():
            raise DataError(f"{where}: no such sound file; check the path")
        handle: str | io.BytesIO = str(source)
    else:
        if len(source) == 0:
            raise DataError(f"{where}: the recording is empty (0 bytes)")
        handle = io.BytesIO(source)
    try:
        data, rate = soundfile.read(handle, dtype="float32", always_2d=True)
    except (RuntimeError, OSError, ValueError, TypeError) as error:
        # libsndfile's own words, without its "Error opening <_io.BytesIO object at 0x...>: "
        reason = getattr(error, "error_string", None) or str(error).splitlines()[0]
        reason = reason or type(error).__name__
        raise DataError(
            f"{where}: cannot be read as audio ({reason}); send WAV, FLAC, OGG or MP3"
        ) from None
    if rate < MIN_SAMPLE_RATE:
        raise DataError(
            f"{where}: sampled at {rate} Hz; speech needs at least {MIN_SAMPLE_RATE} Hz "
            f"(the model reads {sample_rate} Hz)"
        )
    mono = data.mean(axis=1, dtype=np.float32)  # (samples, channels) -> (samples,)
    if len(mono) == 0:
        raise DataError(f"{where}: the recording is empty (0 samples)")
    if not np.isfinite(mono).all():
        raise DataError(f"{where}: the recording holds NaN or infinite samples")
    if rate != sample_rate:
        mono = soxr.resample(mono, rate, sample_rate, quality="HQ")
        if len(mono) == 0:  # a few samples declared at a huge rate
            raise DataError(
                f"{where}: the recording is empty at {sample_rate} Hz ({len(data)} samples "
                f"at {rate} Hz)"
            )
    return np.asarray(mono, dtype=np.float32)


def read_recordings(
    recordings: Sequence[Recording], sample_rate: int, names: Sequence[str] | None
) -> list[np.ndarray]:
    """Each recording as float32 (samples,) at `sample_rate`; errors name `names[i]` (default:
    the path, or `recording i`).

    Raises:
        DataError: a file is missing, unreadable, empty or not finite; `recordings` is not a
            list, or holds something other than a path, bytes or samples.
    """
    if isinstance(recordings, (str, Path, bytes, np.ndarray)) or not isinstance(
        recordings, Sequence
    ):
        raise DataError(
            f"recordings: give a list of recordings (got {type(recordings).__name__}); "
            f"{ACCEPTED}, e.g. transcribe(['a.wav'])"
        )
    waves = []
    for i, recording in enumerate(recordings):
        where = names[i] if names is not None else _name(recording, i)
        if not isinstance(recording, (str, Path, bytes, np.ndarray)):
            raise DataError(
                f"{where}: got {type(recording).__name__}; each recording is {ACCEPTED}"
            )
        if isinstance(recording, np.ndarray):
            wave = np.asarray(recording, dtype=np.float32)
            if wave.ndim != 1 or len(wave) == 0:
                raise DataError(
                    f"{where}: give samples as a non-empty 1-D array of finite floats "
                    f"at {sample_rate} Hz (got shape {wave.shape})"
                )
            if not np.isfinite(wave).all():
                bad = int((~np.isfinite(wave)).sum())
                raise DataError(
                    f"{where}: {bad} of its {len(wave)} samples are NaN or infinite; give "
                    f"finite floats at {sample_rate} Hz"
                )
            waves.append(wave)
        else:
            waves.append(read_sound(recording, sample_rate, where))
    return waves


def _name(recording: Recording, i: int) -> str:
    return str(recording) if isinstance(recording, (str, Path)) else f"recording {i}"


def frame_scores(
    waves: Sequence[np.ndarray],
    forward: Forward,
    windows: SpeechWindows,
    batch_size: int,
    stop: threading.Event | None = None,
) -> list[np.ndarray]:
    """Per recording (samples,), its stitched CTC logits (T, V); windows of every recording
    go through `forward` together, `batch_size` at a time (STOP_WINDOWS with `stop`).

    Raises:
        TranscriptionStopped: `stop` was set before a forward pass.
    """
    if not waves:  # no recordings, no transcripts (np.concatenate needs one array)
        return []
    cut = [cut_windows(w, windows.window, windows.overlap, windows.frame) for w in waves]
    stacked = np.concatenate([pieces for pieces, _ in cut], axis=0)  # (N, window)
    step = batch_size if stop is None else min(batch_size, STOP_WINDOWS)
    outputs = []
    for start in range(0, len(stacked), step):
        _check(stop)
        outputs.append(forward(stacked[start : start + step]))
    logits = np.concatenate(outputs, axis=0)  # (N, T', V)
    stitched, first = [], 0
    for pieces, starts in cut:
        own = list(logits[first : first + len(pieces)])
        stitched.append(stitch_frames(own, starts, windows.frame))
        first += len(pieces)
    return stitched


def transcribe_waves(
    waves: Sequence[np.ndarray],
    forward: Forward,
    windows: SpeechWindows,
    decode: Decode,
    batch_size: int = 16,
    stop: threading.Event | None = None,
) -> list[list[int]]:
    """Token ids of each recording (samples,) at the model's rate; with `stop`, checked
    before each forward pass and each recording's decoding.

    Raises:
        TranscriptionStopped: `stop` was set.
    """
    ids = []
    for scores in frame_scores(waves, forward, windows, batch_size, stop):
        _check(stop)
        ids.append(decode(scores))
    return ids


def _check(stop: threading.Event | None) -> None:
    if stop is not None and stop.is_set():
        raise TranscriptionStopped("transcription stopped: its time limit passed")


def valid_text(text: str) -> str:
    """`text` as valid UTF-8 text: a lone surrogate (half a character) becomes U+FFFD, so a
    transcript always prints and serialises as JSON."""
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
