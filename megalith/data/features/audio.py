"""Audio features: a column of sound file paths, decoded to fixed-length mono waveforms.

Files are read with soundfile (libsndfile: WAV, FLAC, OGG/Vorbis, ...), mixed to mono by averaging
the channels, resampled to `sample_rate` with soxr (the SoX resampler, high quality), then zero-
padded at the end or cut to `duration` seconds (the first `duration` seconds are kept). Each row
becomes float32 (samples,). The log-mel spectrogram is computed inside the model (see
megalith.data.features.logmel and megalith.models.logmel), so predict, export and the torch-free
runtime share it; this encoder fits the per-bin mean / std of the train log-mels it normalises by.
soundfile and soxr are the `audio` extra, imported when audio is first read.
"""

from __future__ import annotations

import io
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from megalith.configbase import ConfigModel
from megalith.data.arrays import to_tensor
from megalith.data.features.logmel import LogMelSettings, MelScale, log_mel
from megalith.data.rows import describe_row, describe_value
from megalith.data.specs import InputSpec
from megalith.errors import DataError

if TYPE_CHECKING:
    import torch

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif", ".au", ".mp3", ".opus")
"""File endings read as audio (compared lower-cased); `megalith init` recognises these."""
_STATS_SAMPLE = 2048
"""Clips that estimate the per-bin mean / std: all up to this many, else evenly spaced."""


MIN_SAMPLE_RATE = 4000
"""Files sampled slower than this are refused naming their row, as transcribe and serve refuse
them (megalith.runtime.transcription.MIN_SAMPLE_RATE): no speech band fits below it."""


class AudioAugment(ConfigModel):
    """Random changes applied to each training batch inside the model, never at evaluation.

    Drawn from PyTorch's generator, which the run seeds and its checkpoints save, so a run and
    its exact resume see the same changes. Set a value to 0 to switch that change off.
    """

    gain_db: float = Field(6.0, ge=0)
    """Each clip's loudness is scaled by a gain drawn uniformly in +/- this many decibels."""
    shift: float = Field(0.0, ge=0)
    """Each clip is rolled in time by up to this many seconds either way; what leaves one end
    enters at the other (usually the padding's silence)."""
    noise_snr_db: float | None = None
    """White noise is added at this signal-to-noise ratio (dB, relative to each clip's RMS);
    null (the default) for none. It also fills the zero padding, which evaluation leaves silent."""
    freq_masks: int = Field(2, ge=0)
    """SpecAugment: frequency masks per clip, each of up to `freq_mask_width` mel bins."""
    freq_mask_width: int = Field(8, ge=0)
    """Widest frequency mask, in mel bins."""
    time_masks: int = Field(2, ge=0)
    """SpecAugment: time masks per clip, each of up to `time_mask_width` frames."""
    time_mask_width: int = Field(10, ge=0)
    """Widest time mask, in frames."""
    speeds: list[Annotated[float, Field(ge=0.5, le=2.0)]] = []
    """Speed perturbation (T. Ko et al., "Audio Augmentation for Speech Recognition",
    Interspeech 2015): each clip plays at one of these speeds, drawn uniformly (e.g. [0.9, 1.0,
    1.1]), tempo and pitch together; empty (the default) for none."""


class AudioInput(ConfigModel):
    """An audio input: paths to sound files, relative to the table's folder."""

    name: str
    """Column name in the table."""
    type: Literal["audio"] = "audio"
    sample_rate: int | None = Field(None, gt=0)
    """Hz every clip is resampled to; by default the rate of the first training file."""
    duration: float | None = Field(None, gt=0)
    """Seconds per clip: shorter clips are zero-padded at the end, longer ones cut; by default
    the longest training clip."""
    n_mels: int = Field(40, gt=0)
    """Mel filters: the height of the spectrogram the backbone sees."""
    n_fft: int | None = Field(None, ge=16)
    """Samples per STFT frame; by default the power of two at or above 25 ms."""
    hop_length: int | None = Field(None, gt=0)
    """Samples between frames; by default 10 ms."""
    f_min: float = Field(0.0, ge=0)
    """Hz, lower edge of the lowest mel filter."""
    f_max: float | None = Field(None, gt=0)
    """Hz, upper edge of the highest mel filter; by default half the sample rate."""
    mel_scale: MelScale = "slaney"
    """'slaney' (linear below 1 kHz, librosa's default) or 'htk' (2595 log10(1 + f / 700))."""
    log_floor: float = Field(1e-6, gt=0)
    """Mel energies are raised to at least this before the natural log."""
    variable_length: bool = False
    """Keep each clip's own length (up to `duration`): each batch is cut after its longest clip
    and a frames mask keeps the padding out of the features (model.arch cnn or crnn), so a clip's
    prediction does not depend on the clips batched with it."""
    augment: AudioAugment | None = None
    """Train-time augmentation (gain, shift, noise, SpecAugment masks); `augment: {}` for the
    defaults of each; none by default."""

    @model_validator(mode="after")
    def _filters_in_band(self) -> AudioInput:
        if self.f_max is not None and self.f_max <= self.f_min:
            raise ValueError(f"f_max ({self.f_max}) must be above f_min ({self.f_min})")
        rate, top = self.sample_rate, self.f_max
        if rate is not None and top is not None and top > rate / 2:
            raise ValueError(
                f"f_max ({top} Hz) is above half the sample rate ({rate / 2} Hz); "
                "lower it or raise sample_rate"
            )
        return self


class AudioInputEncoder:
    """Reads, mixes down, resamples and pads sound files: float32 (B, samples)."""

    def __init__(self, config: AudioInput, state: dict[str, Any] | None = None) -> None:
        self.config = config
        self.settings: LogMelSettings | None = None
        self.samples = 0
        self.mean: tuple[float, ...] = ()
        self.std: tuple[float, ...] = ()
        if state is not None:
            self.settings = LogMelSettings(**state["log_mel"])
            self.samples = int(state["samples"])
            self.mean = tuple(float(m) for m in state["mean"])
            self.std = tuple(float(s) for s in state["std"])

    def fit(self, values: pd.Series, *, where: str, base_dir: Path | None = None) -> None:
        """Settle the rate, length and STFT sizes; measure the per-bin log-mel mean / std."""
        if len(values) == 0:
            raise DataError(f"{where}: audio column '{self.config.name}' has no train rows.")
        rate, longest = self._survey(values, where, base_dir)
        self.settings = _resolve_settings(self.config, rate, where)
        seconds = self.config.duration or longest
        self.samples = max(math.ceil(seconds * self.settings.sample_rate), self.settings.n_fft)
        count = min(len(values), _STATS_SAMPLE)
        positions = np.unique(np.linspace(0, len(values) - 1, count).round().astype(np.int64))
        mels = log_mel(
            self.encode(values.iloc[positions], where=where, base_dir=base_dir), self.settings
        )  # (n, M, T)
        std = mels.std(axis=(0, 2))
        std[std < 1e-6] = 1.0  # a constant bin (e.g. above the band of every clip) stays finite
        self.mean, self.std = tuple(mels.mean(axis=(0, 2)).tolist()), tuple(std.tolist())

    def _survey(self, values: pd.Series, where: str, base_dir: Path | None) -> tuple[int, float]:
        """(sample rate of the first file, seconds of the longest), from the file headers."""
        import soundfile

        rate, longest = 0, 0.0
        for label, cell in values.items():
            path = self._path(label, cell, where, base_dir)
            try:
                info = soundfile.info(str(path))
            except (RuntimeError, OSError) as error:
                raise self._error(label, path, where, _unreadable(error)) from None
            if info.frames == 0:
                raise self._error(label, path, where, EMPTY)
            if info.samplerate < MIN_SAMPLE_RATE:
                raise self._error(label, path, where, _too_slow(info.samplerate))
            rate = rate or int(info.samplerate)
            longest = max(longest, info.frames / info.samplerate)
        if longest == 0.0:
            raise DataError(
                f"{where}: audio column '{self.config.name}': every train file is empty; "
                "set duration to the clip length you expect."
            )
        return rate, longest

    def transform(
        self, values: pd.Series, *, where: str, base_dir: Path | None = None
    ) -> torch.Tensor:
        """`encode` as a tensor."""
        return to_tensor(self.encode(values, where=where, base_dir=base_dir))

    def encode(self, values: pd.Series, *, where: str, base_dir: Path | None = None) -> np.ndarray:
        """Return float32 (B, samples); files are decoded in threads (libsndfile and soxr run
        without the GIL).

        Raises:
            DataError: a cell is not a path, or its file is missing, unreadable or corrupt.
        """
        if self.settings is None:
            raise RuntimeError(f"audio input '{self.config.name}' used before fit")
        waves = np.zeros((len(values), self.samples), dtype=np.float32)
        labels, cells = values.index.tolist(), values.tolist()

        def decode_into(position: int) -> None:
            wave = self._decode(labels[position], cells[position], where, base_dir)
            kept = min(len(wave), self.samples)
            waves[position, :kept] = wave[:kept]

        pool = ThreadPoolExecutor(thread_name_prefix="megalith-audio")
        try:
            for _ in pool.map(decode_into, range(len(values))):
                pass
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return waves

    def _decode(self, label: Any, cell: Any, where: str, base_dir: Path | None) -> np.ndarray:
        """One cell -> float32 (n,) mono at the fitted sample rate, n being the file's length."""
        import soundfile
        import soxr

        assert self.settings is not None
        # bytes: a whole sound file sent to `serve` (megalith.serving.audio_uploads)
        path = Path("(uploaded audio)") if isinstance(cell, bytes) else None
        source = io.BytesIO(cell) if path else str(self._path(label, cell, where, base_dir))
        path = path or Path(source)  # type: ignore[arg-type]
        try:
            data, rate = soundfile.read(source, dtype="float32", always_2d=True)
        except (RuntimeError, OSError) as error:
            raise self._error(label, path, where, _unreadable(error)) from None
        if rate < MIN_SAMPLE_RATE:
            raise self._error(label, path, where, _too_slow(rate))
        mono = data.mean(axis=1, dtype=np.float32)  # (frames, channels) -> (frames,)
        if len(mono) == 0:
            raise self._error(label, path, where, EMPTY)
        if not np.isfinite(mono).all():
            raise self._error(label, path, where, "holds NaN or infinite samples")
        if rate != self.settings.sample_rate:
            mono = soxr.resample(mono, rate, self.settings.sample_rate, quality="HQ")
        return np.asarray(mono, dtype=np.float32)

    def _path(self, label: Any, cell: Any, where: str, base_dir: Path | None) -> Path:
        if not isinstance(cell, (str, Path)) or not str(cell).strip():
            raise DataError(
                f"{where}: column '{self.config.name}', {describe_row(label)}: expected the path "
                f"of a sound file, got {describe_value(cell)}; fill in the path or drop the row."
            )
        path = Path(cell)
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        if not path.is_file():
            raise self._error(label, path, where, "does not exist; fix the path or add the file")
        return path

    def _error(self, label: Any, path: Path, where: str, problem: str) -> DataError:
        return DataError(
            f"{where}: column '{self.config.name}', {describe_row(label)}: sound file "
            f"{str(path)!r} {problem}."
        )

    def state(self) -> dict[str, Any]:
        assert self.settings is not None, "fit first"
        return {
            "log_mel": vars(self.settings).copy(),
            "samples": self.samples,
            "mean": list(self.mean),
            "std": list(self.std),
        }

    def spec(self) -> InputSpec:
        assert self.settings is not None, "fit first"
        return InputSpec(
            name=self.config.name,
            type="audio",
            shape=(self.samples,),
            mean=self.mean,
            std=self.std,
            log_mel=self.settings,
            augment=self.config.augment,
            variable_length=self.config.variable_length,
        )


def _resolve_settings(config: AudioInput, file_rate: int, where: str) -> LogMelSettings:
    """The config's front end with every default filled in for this sample rate."""
    rate = config.sample_rate or file_rate
    n_fft = config.n_fft or 1 << math.ceil(math.log2(max(0.025 * rate, 16)))
    f_max = config.f_max or rate / 2
    if f_max > rate / 2 or f_max <= config.f_min:
        raise DataError(
            f"{where}: audio input '{config.name}': the mel filters span {config.f_min}-{f_max} "
            f"Hz, which must lie within 0-{rate / 2} Hz (half the sample rate, {rate} Hz); "
            "set f_min / f_max or sample_rate."
        )
    return LogMelSettings(
        sample_rate=rate,
        n_fft=n_fft,
        hop_length=config.hop_length or max(1, round(0.010 * rate)),
        n_mels=config.n_mels,
        f_min=config.f_min,
        f_max=float(f_max),
        mel_scale=config.mel_scale,
        floor=config.log_floor,
    )


EMPTY = "holds no samples (an empty recording); record it again or drop the row"


def _too_slow(rate: int) -> str:
    """Why a file sampled below MIN_SAMPLE_RATE is refused (transcribe and serve refuse it too)."""
    return (
        f"is sampled at {rate} Hz, below the {MIN_SAMPLE_RATE} Hz that speech and sound need; "
        "resample it or drop the row"
    )


def _unreadable(error: BaseException) -> str:
    reason = getattr(error, "error_string", None) or error  # without "Error opening 'PATH': "
    return f"cannot be read as audio ({reason}); use WAV, FLAC or OGG, or fix the file"
