"""Spoken digit strings made offline: "four one seven" said by synthetic voices (espeak-ng).

    python -m megalith.data.spoken_digit_strings OUT_DIR [--speakers 24] [--strings 30]

writes OUT_DIR/strings.csv (columns audio, text, speaker, split) and one sound file per row under
OUT_DIR/clips/, named SPEAKER_INDEX.wav. Each row is a string of 3-7 digits read as words ("four
one seven"), the transcript a speech recognizer (`model.arch: asr`) learns to write. Speakers are
those of megalith.data.spoken_digits (an espeak-ng accent with a voice variant, and a speaking
rate and pitch of its own); each string varies rate, pitch, the gap between words and loudness
around them and gets faint white noise. Whole speakers are held out: the last `test_speakers` form
the test split and the `val_speakers` before them the validation split, so the word error rate is
measured on voices never heard in training (their accent or variant may be, in another pairing).
`builtin:spoken_digit_strings` is the default set, generated once into the cache folder.
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
from megalith.data.spoken_digits import DIGITS, speaker_voice
from megalith.errors import DataError

CSV_NAME = "strings.csv"
_VERSION = 1
"""Bump when the generated data changes, so cached copies are made again."""


@dataclass(frozen=True)
class DigitString:
    """One clip to synthesise: who says which digits, how."""

    digits: tuple[int, ...]
    speaker: str
    voice: str
    """espeak-ng -v argument, e.g. 'en-us+f2'."""
    rate: int
    """Words per minute (espeak-ng -s)."""
    pitch: int
    """0-99 (espeak-ng -p)."""
    gap: int
    """Extra pause between words, in units of 10 ms (espeak-ng -g)."""
    amplitude: int
    """0-200 (espeak-ng -a)."""
    noise_snr_db: float
    file: str
    """Path relative to the output folder."""
    split: str

    @property
    def text(self) -> str:
        """The transcript: the digits as lower-case words separated by single spaces."""
        return " ".join(DIGITS[d] for d in self.digits)


def plan_strings(
    speakers: int,
    strings: int,
    *,
    test_speakers: int,
    val_speakers: int,
    shortest: int = 3,
    longest: int = 7,
    seed: int = 0,
) -> list[DigitString]:
    """Every clip of the data set, in a fixed order; the same arguments give the same plan.

    Raises:
        DataError: too few speakers for the held-out ones, or a bad range of string lengths.
    """
    if speakers < test_speakers + val_speakers + 1:
        raise DataError(
            f"spoken digit strings: {speakers} speakers cannot hold {test_speakers} test and "
            f"{val_speakers} validation speakers plus one to train on; add speakers."
        )
    if not 1 <= shortest <= longest:
        raise DataError(f"spoken digit strings: lengths {shortest}-{longest} are not a range.")
    rng = np.random.default_rng(seed)
    planned = []
    for s in range(speakers):
        split = "test" if s >= speakers - test_speakers else "train"
        if split == "train" and s >= speakers - test_speakers - val_speakers:
            split = "val"
        name = f"s{s:02d}"
        base_rate, base_pitch = int(rng.integers(130, 191)), int(rng.integers(25, 76))
        for i in range(strings):
            count = int(rng.integers(shortest, longest + 1))
            planned.append(
                DigitString(
                    digits=tuple(int(d) for d in rng.integers(0, 10, count)),
                    speaker=name,
                    voice=speaker_voice(s),
                    rate=base_rate + int(rng.integers(-15, 16)),
                    pitch=int(np.clip(base_pitch + rng.integers(-8, 9), 0, 99)),
                    gap=int(rng.integers(0, 4)),
                    amplitude=int(rng.integers(60, 141)),
                    noise_snr_db=float(rng.uniform(20, 40)),
                    file=f"clips/{name}_{i:03d}.wav",
                    split=split,
                )
            )
    return planned


def synthesise_string(utterance: DigitString, out_dir: Path, sample_rate: int, seed: int) -> None:
    """Say one digit string with espeak-ng, add its noise, resample and write the clip."""
    options = ["-v", utterance.voice, "-s", str(utterance.rate), "-p", str(utterance.pitch)]
    say(
        [*options, "-g", str(utterance.gap), "-a", str(utterance.amplitude)],
        utterance.text,
        out_dir / utterance.file,
        sample_rate=sample_rate,
        noise_snr_db=utterance.noise_snr_db,
        noise_key=[seed, int(utterance.speaker[1:]), *utterance.digits],
    )


def make_spoken_digit_strings(
    out_dir: str | Path,
    *,
    speakers: int = 24,
    strings: int = 30,
    sample_rate: int = 8000,
    test_speakers: int = 4,
    val_speakers: int = 2,
    seed: int = 0,
    workers: int = 2,
) -> Path:
    """Write the digit-string clips and their table into `out_dir`; return the CSV's path.

    Args:
        speakers: distinct synthetic voices; strings: digit strings each of them says.
        sample_rate: Hz of the written clips (telephone-band recordings are at 8,000).

    Raises:
        DataError: espeak-ng is not installed, or the split cannot be made.
    """
    out = Path(out_dir)
    planned = plan_strings(
        speakers, strings, test_speakers=test_speakers, val_speakers=val_speakers, seed=seed
    )
    espeak_path()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="megalith-espeak") as pool:
        list(pool.map(lambda u: synthesise_string(u, out, sample_rate, seed), planned))
    table = out / CSV_NAME
    with table.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["audio", "text", "speaker", "split"])
        for u in planned:
            writer.writerow([u.file, u.text, u.speaker, u.split])
    return table


def spoken_digit_strings_table() -> pd.DataFrame:
    """`builtin:spoken_digit_strings`: the default set (24 voices x 30 strings, 8 kHz; 4 test and
    2 validation voices), generated into the cache folder on first use, with absolute paths.

    Raises:
        DataError: espeak-ng is missing, or the cache folder cannot be written.
    """
    return cached_table(
        f"spoken_digit_strings-v{_VERSION}",
        CSV_NAME,
        make_spoken_digit_strings,
        "spoken digit strings",
    )


def main(argv: list[str] | None = None) -> None:
    """The command line: python -m megalith.data.spoken_digit_strings OUT_DIR [options]."""
    defaults: dict[str, int | str] = {
        "speakers": 24,
        "strings": 30,
        "sample_rate": 8000,
        "test_speakers": 4,
        "val_speakers": 2,
        "seed": 0,
    }
    generator_main(make_spoken_digit_strings, __doc__.split("\n")[0], defaults, argv)


if __name__ == "__main__":
    main()
