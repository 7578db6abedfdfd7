"""Spoken digits made offline: the words "zero" to "nine" said by synthetic voices (espeak-ng).

    python -m megalith.data.spoken_digits OUT_DIR [--speakers 12] [--repeats 5] [--sample-rate 8000]

writes OUT_DIR/digits.csv (columns audio, digit, split) and one sound file per row under
OUT_DIR/clips/, named DIGIT_SPEAKER_REPEAT.wav. A "speaker" is an espeak-ng accent with a voice
variant (`en-us+f2`) and its own speaking rate and pitch; each utterance varies rate, pitch and
loudness a little around them and gets faint white noise. Whole speakers are held out: the last
`test_speakers` form the test split and the `val_speakers` before them the validation split, so a
model is scored on voices it never heard, as a recorded spoken-digit set is scored on a held-out
speaker. `builtin:spoken_digits` is the default set, generated once into a cache folder.

espeak-ng (`apt-get install espeak-ng`) synthesises at 22,050 Hz; clips are resampled with soxr.
"""

from __future__ import annotations

import csv
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from megalith.data.espeak import espeak_path, say
from megalith.data.generated_sets import cached_table, generator_main
from megalith.errors import DataError

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ACCENTS = (
    "en-us",
    "en",
    "en-gb-scotland",
    "en-029",
    "en-gb-x-rp",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
)
"""espeak-ng's English voices; 7 and the 16 variants share no factor, so speakers stay distinct."""
VARIANTS = (
    *("m1", "f1", "m2", "f2", "m3", "f3", "m4", "f4", "m5", "f5"),
    *("m7", "klatt", "m6", "klatt2", "m8", "klatt3"),
)
FORMATS = ("wav", "flac", "ogg")
CSV_NAME = "digits.csv"
_VERSION = 1
"""Bump when the generated data changes, so cached copies are made again."""


@dataclass(frozen=True)
class Utterance:
    """One clip to synthesise: who says which digit, how."""

    digit: int
    speaker: str
    voice: str
    """espeak-ng -v argument, e.g. 'en-us+f2'."""
    rate: int
    """Words per minute (espeak-ng -s)."""
    pitch: int
    """0-99 (espeak-ng -p)."""
    amplitude: int
    """0-200 (espeak-ng -a)."""
    noise_snr_db: float
    file: str
    """Path relative to the output folder."""
    split: str


def speaker_voice(index: int) -> str:
    """The espeak-ng voice of speaker `index`: an accent and a variant, e.g. 'en-us+f1'."""
    return f"{ACCENTS[index % len(ACCENTS)]}+{VARIANTS[index % len(VARIANTS)]}"


def plan(
    speakers: int, repeats: int, *, test_speakers: int, val_speakers: int, fmt: str, seed: int
) -> list[Utterance]:
    """Every clip of the data set, in a fixed order; the same arguments give the same plan."""
    if speakers < test_speakers + val_speakers + 1:
        raise DataError(
            f"spoken digits: {speakers} speakers cannot hold {test_speakers} test and "
            f"{val_speakers} validation speakers plus one to train on; add speakers."
        )
    rng = np.random.default_rng(seed)
    utterances = []
    for s in range(speakers):
        split = "test" if s >= speakers - test_speakers else "train"
        if split == "train" and s >= speakers - test_speakers - val_speakers:
            split = "val"
        name = f"s{s:02d}"
        base_rate, base_pitch = int(rng.integers(130, 191)), int(rng.integers(25, 76))
        for r in range(repeats):
            for digit, _ in enumerate(DIGITS):
                utterances.append(
                    Utterance(
                        digit=digit,
                        speaker=name,
                        voice=speaker_voice(s),
                        rate=base_rate + int(rng.integers(-15, 16)),
                        pitch=int(np.clip(base_pitch + rng.integers(-8, 9), 0, 99)),
                        amplitude=int(rng.integers(60, 141)),
                        noise_snr_db=float(rng.uniform(20, 40)),
                        file=f"clips/{digit}_{name}_{r}.{fmt}",
                        split=split,
                    )
                )
    return utterances


def synthesise(utterance: Utterance, out_dir: Path, sample_rate: int, seed: int) -> None:
    """Say one digit with espeak-ng, add its noise, resample and write the clip."""
    options = ["-v", utterance.voice, "-s", str(utterance.rate), "-p", str(utterance.pitch)]
    say(
        [*options, "-a", str(utterance.amplitude)],
        DIGITS[utterance.digit],
        out_dir / utterance.file,
        sample_rate=sample_rate,
        noise_snr_db=utterance.noise_snr_db,
        noise_key=[seed, utterance.digit, int(utterance.speaker[1:])],
    )


def make_spoken_digits(
    out_dir: str | Path,
    *,
    speakers: int = 12,
    repeats: int = 5,
    sample_rate: int = 8000,
    test_speakers: int = 2,
    val_speakers: int = 1,
    fmt: str = "wav",
    seed: int = 0,
    workers: int = 2,
) -> Path:
    """Write the spoken-digit clips and their table into `out_dir`; return the CSV's path.

    Args:
        speakers: distinct synthetic voices; repeats: times each says each digit.
        sample_rate: Hz of the written clips (a recorded spoken-digit set is at 8,000).
        fmt: 'wav' (16-bit PCM), 'flac' or 'ogg' (Vorbis).

    Raises:
        DataError: espeak-ng is not installed, the split cannot be made, or fmt is unknown.
    """
    if fmt not in FORMATS:
        raise DataError(f"spoken digits: format '{fmt}' is not one of {', '.join(FORMATS)}.")
    out = Path(out_dir)
    utterances = plan(
        speakers,
        repeats,
        test_speakers=test_speakers,
        val_speakers=val_speakers,
        fmt=fmt,
        seed=seed,
    )
    espeak_path()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="megalith-espeak") as pool:
        list(pool.map(lambda u: synthesise(u, out, sample_rate, seed), utterances))
    table = out / CSV_NAME
    with table.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["audio", "digit", "split"])  # the speaker is in each file's name
        for u in utterances:
            writer.writerow([u.file, u.digit, u.split])
    return table


def spoken_digits_table() -> pd.DataFrame:
    """`builtin:spoken_digits`: the default data set (12 voices, 5 repeats, 8 kHz; 2 test and 1
    validation voice), generated into the cache folder on first use, with absolute paths.

    Raises:
        DataError: espeak-ng is missing, or the cache folder cannot be written.
    """
    return cached_table(f"spoken_digits-v{_VERSION}", CSV_NAME, make_spoken_digits, "spoken digits")


def main(argv: list[str] | None = None) -> None:
    """The command line: python -m megalith.data.spoken_digits OUT_DIR [options]."""
    defaults: dict[str, int | str] = {
        "speakers": 12,
        "repeats": 5,
        "sample_rate": 8000,
        "test_speakers": 2,
        "val_speakers": 1,
        "format": "wav",  # make_spoken_digits's `fmt`
        "seed": 0,
    }
    generator_main(
        lambda out_dir, format, **rest: make_spoken_digits(out_dir, fmt=format, **rest),
        __doc__.split("\n")[0],
        defaults,
        argv,
        choices={"format": FORMATS},
    )


if __name__ == "__main__":
    main()
