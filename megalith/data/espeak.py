"""Speech made offline by espeak-ng, for the built-in spoken data sets and their tests.

`say` runs espeak-ng (22,050 Hz), adds faint white noise, resamples with soxr and writes the clip;
`generate_once` builds a data set into the cache folder atomically on first use. soundfile and
soxr (the `audio` extra) are imported when a clip is first written.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from megalith.errors import DataError


def espeak_path() -> str:
    """The espeak-ng executable.

    Raises:
        DataError: espeak-ng is not installed, saying how to install it.
    """
    found = shutil.which("espeak-ng")
    if found is None:
        raise DataError(
            "spoken digits need espeak-ng to synthesise speech; install it "
            "(apt-get install espeak-ng, brew install espeak-ng) and run again."
        )
    return found


def say(
    options: Sequence[str],
    text: str,
    path: Path,
    *,
    sample_rate: int,
    noise_snr_db: float,
    noise_key: Sequence[int],
) -> None:
    """espeak-ng with `options` (voice, rate, pitch, ...) says `text`; white noise at
    `noise_snr_db` dB below the clip's RMS (drawn from `noise_key` and the clip's length) is
    added, the clip resampled to `sample_rate` Hz, limited to a peak of 0.99 and written to
    `path` (Ogg Vorbis for .ogg, else 16-bit PCM)."""
    import soundfile
    import soxr

    with tempfile.TemporaryDirectory(prefix="megalith-espeak-") as scratch:
        raw = Path(scratch) / "say.wav"
        command = [espeak_path(), *options, "-w", str(raw), text]
        subprocess.run(command, check=True, capture_output=True, timeout=60)
        wave, rate = soundfile.read(str(raw), dtype="float64")
    rng = np.random.default_rng([*noise_key, len(wave)])
    rms = float(np.sqrt(np.mean(wave**2))) if len(wave) else 0.0
    wave = wave + rng.standard_normal(len(wave)) * rms * 10 ** (-noise_snr_db / 20)
    wave = soxr.resample(wave, rate, sample_rate)
    peak = float(np.max(np.abs(wave))) if len(wave) else 0.0
    if peak > 0.99:
        wave = wave * (0.99 / peak)
    path.parent.mkdir(parents=True, exist_ok=True)
    subtype = "VORBIS" if path.suffix == ".ogg" else "PCM_16"
    soundfile.write(str(path), wave.astype(np.float32), sample_rate, subtype=subtype)


def cache_folder() -> Path:
    """Where generated data sets are kept: $MEGALITH_CACHE, else $XDG_CACHE_HOME/megalith, else
    ~/.cache/megalith."""
    if os.environ.get("MEGALITH_CACHE"):
        return Path(os.environ["MEGALITH_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "megalith"


def generate_once(folder: Path, marker: str, make: Callable[[Path], object], what: str) -> None:
    """Run `make` into a scratch folder beside `folder`, then rename it into place: atomic, so a
    concurrent process sees all of it or none (the loser of a race removes its copy). Nothing is
    done when `folder/marker` exists.

    Raises:
        DataError: the cache folder cannot be written, naming `what` and MEGALITH_CACHE.
    """
    if (folder / marker).is_file():
        return
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    except OSError as error:
        raise DataError(
            f"cannot write the {what} under {folder.parent} ({error}); "
            "set MEGALITH_CACHE to a writable folder."
        ) from None
    try:
        make(scratch)
        os.replace(scratch, folder)
    except OSError:
        if not (folder / marker).is_file():  # another process won the race
            raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
