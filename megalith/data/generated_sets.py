"""What the generated sound data sets (spoken digits, spoken digit strings) share: the cached
copy a `builtin:` name reads, and the `python -m` command line that writes a copy anywhere."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pandas as pd

from megalith.data.espeak import cache_folder, generate_once
from megalith.errors import MegalithError


def cached_table(
    folder_name: str, csv_name: str, make: Callable[[Path], object], what: str
) -> pd.DataFrame:
    """The table of a generated set in the cache folder (`make` writes it there on first use),
    its `audio` column turned into absolute paths.

    Raises:
        DataError: `make` fails (espeak-ng missing ...), or the cache folder cannot be written.
    """
    folder = cache_folder() / folder_name
    generate_once(folder, csv_name, make, what)
    frame = pd.read_csv(folder / csv_name)
    frame["audio"] = [str(folder / file) for file in frame["audio"]]
    return frame


def generator_main(
    make: Callable[..., Path],
    description: str,
    defaults: Mapping[str, int | str],
    argv: list[str] | None = None,
    choices: Mapping[str, Sequence[str]] | None = None,
) -> None:
    """`python -m ... OUT_DIR [--option value ...]`: call `make(OUT_DIR, **options)` and print the
    table's path; a MegalithError is printed on one line with exit code 2, not a traceback.

    Args:
        defaults: keyword argument of `make` -> its default; each becomes `--kebab-name`, typed
            as its default is.
        choices: the allowed values of some of those options.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("out_dir", type=Path)
    for name, default in defaults.items():
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            type=type(default),
            default=default,
            choices=(choices or {}).get(name),
        )
    options = vars(parser.parse_args(argv))
    out_dir = options.pop("out_dir")
    try:
        table = make(out_dir, **options)
    except MegalithError as error:  # one line, like the megalith command, not a traceback
        parser.exit(2, f"error: {error}\n")
    print(f"wrote {table}")
