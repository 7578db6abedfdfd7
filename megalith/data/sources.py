"""Where rows come from: CSV, Parquet, JSONL tables, image folders, and built-in datasets."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import field_validator, model_validator

from megalith.configbase import ConfigModel
from megalith.data.csvfile import CsvDialect, read_csv
from megalith.data.split import SplitConfig
from megalith.errors import DataError
from megalith.memory import available_bytes, format_bytes
from megalith.paths import check_readable
from megalith.structured import parse_json


class DataConfig(ConfigModel):
    """Where the data is and how it is split."""

    source: str
    """A table (.csv, .parquet, .jsonl), an image folder (subfolder per class), a text corpus
    (.txt file or folder, for language models), or builtin:NAME."""
    format: Literal["auto", "csv", "parquet", "jsonl", "images", "text"] = "auto"
    """File format; 'auto' decides from the file suffix (.txt / .md / .rst: text; a folder:
    images). text: a plain-text corpus, a file or a folder of them, one row per document."""
    split: SplitConfig = SplitConfig()
    """Fractions {val, test, seed}, or the name of a column holding train / val / test."""
    delimiter: Literal["auto", ",", ";", "\t", "|"] = "auto"
    """CSV column separator: auto (detected from the file's first lines), ',', ';', tab
    ('\\t' or 'tab') or '|'. Training records the one it used in the run's config.yaml."""
    decimal: Literal["auto", ".", ","] = "auto"
    """CSV decimal mark: auto ('.', or ',' when the separator is not a comma and the numbers
    are written with decimal commas), '.' or ','. Recorded like data.delimiter."""
    items: str | None = None
    """Recommenders: a table of item features, one row per item, joined to the interactions
    by the `recommend.item` column (features: recommend.item_features)."""
    users: str | None = None
    """Recommenders: a table of user features, one row per user, joined by `recommend.user`
    (features: recommend.user_features)."""

    @field_validator("split", mode="before")
    @classmethod
    def _column_name_means_split_column(cls, value: Any) -> Any:
        return {"column": value} if isinstance(value, str) else value

    @field_validator("delimiter", mode="before")
    @classmethod
    def _tab_by_name(cls, value: Any) -> Any:
        return "\t" if isinstance(value, str) and value.lower() in ("tab", "\\t") else value

    def read_as(self, dialect: CsvDialect | None) -> DataConfig:
        """This config with the CSV settings a read detected filled in (unchanged for None)."""
        if dialect is None:
            return self
        return self.model_copy(update={"delimiter": dialect.delimiter, "decimal": dialect.decimal})

    @model_validator(mode="after")
    def _decimal_comma_needs_another_separator(self) -> DataConfig:
        if self.delimiter == "," and self.decimal == ",":
            raise ValueError(
                "decimal ',' needs a column separator other than ','; set delimiter to ';'"
            )
        return self


@dataclass(frozen=True)
class Table:
    """Rows loaded from a source, with what is needed to resolve image paths and name errors."""

    frame: pd.DataFrame
    """The rows; index labels are the source's 0-based row numbers (a RangeIndex)."""
    base_dir: Path | None
    """Folder that relative image paths in the table resolve against (None for built-ins)."""
    origin: str
    """How errors name the source: the file path, or 'builtin:digits'."""
    dialect: CsvDialect | None = None
    """How a CSV source was read (separator, decimal mark); None for other sources."""
    text: pd.DataFrame | None = None
    """A CSV source's cells as the file spells them, when asked for (`keep_text`): what
    `megalith predict` writes back, so '01067' or 'TRUE' come out as they went in."""


TABLE_SUFFIXES = {
    ".csv": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}
"""File suffix -> format, for `format: auto`."""
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
"""Files that count as images in an image folder (compared lower-cased)."""
ORIGIN_ATTR = "megalith.origin"
"""Key in a loaded frame's `attrs` naming its source, so errors about a bare frame name the file."""


def load_data(config: DataConfig, *, relative_to: Path | None = None) -> Table:
    """The table `config` names, read with its format and CSV settings (see `load_table`)."""
    return load_table(
        config.source,
        format=config.format,
        relative_to=relative_to,
        delimiter=config.delimiter,
        decimal=config.decimal,
    )


def load_table(
    source: str,
    *,
    format: str = "auto",
    relative_to: Path | None = None,
    delimiter: str = "auto",
    decimal: str = "auto",
    keep_text: bool = False,
) -> Table:
    """Load `source`: builtin:NAME, a .csv/.tsv/.parquet/.jsonl file, or a folder of images.

    Args:
        source: as written in `data.source`.
        format: 'auto' (by suffix; a folder means images), 'csv', 'parquet', 'jsonl', 'images'.
        relative_to: folder a relative path resolves against (the config's); default the cwd.
        delimiter: a CSV file's column separator, or 'auto' to detect it (see csvfile.py).
        decimal: a CSV file's decimal mark, or 'auto' to detect it.
        keep_text: keep a CSV file's cells as text too (`Table.text`).

    Raises:
        DataError: naming the path and what to do, for any source that cannot be read.
    """
    if source.startswith("builtin:"):
        from megalith.data.builtin import load_builtin

        return _table(load_builtin(source.removeprefix("builtin:")), None, source)
    path = Path(source).expanduser()
    if relative_to is not None and not path.is_absolute():
        path = relative_to / path
    if not os.path.lexists(path):
        tried = f" (looked for {path.absolute()})" if not path.is_absolute() else ""
        raise DataError(f"data source not found: {path}{tried}; check data.source and the cwd.")
    # a FIFO or a device would block or never end; a symlink loop never resolves
    check_readable(path, "data source", hint="point data.source at a table file or a folder")
    chosen = _choose_format(path, format)
    if chosen == "text":
        from megalith.data.corpus import read_corpus

        return _table(read_corpus(path), path if path.is_dir() else path.parent, str(path))
    if chosen == "images":
        return _table(_read_image_folder(path), path, str(path))
    if not path.is_file():  # reading a FIFO or a device would block or never end
        raise DataError(
            f"{path} is not a regular file (a pipe, socket or device?); point data.source at a "
            "table file."
        )
    if chosen in ("csv", "jsonl"):
        check_text_table(path)
    try:
        if chosen == "csv":
            return _csv_table(path, delimiter, decimal, keep_text)
        frame = _READERS[chosen](path)
    except MemoryError:  # the size check above is a lower bound; this is the fallback
        raise DataError(
            f"{path}: ran out of memory reading it ({format_bytes(path.stat().st_size)}, "
            f"{format_bytes(available_bytes())} available); train on a sample of its rows, or "
            "on a machine with more memory."
        ) from None
    return _table(_checked_frame(frame, path), path.parent, str(path))


MEMORY_PER_BYTE = 2
"""A text table takes at least this many bytes of memory per byte of file once read (its
cells as strings, then typed); a file that cannot fit so is refused before it is read."""
_HEAD_BYTES = 64 * 1024


def check_text_table(path: Path) -> None:
    """Refuse a CSV / JSONL file that is not text (NUL bytes in its first 64 kB: a binary or
    sparse file) or that cannot fit in the memory left, before reading it.

    Raises:
        DataError: naming the file, its size and what to do.
    """
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(_HEAD_BYTES)
    except OSError as error:
        raise DataError(f"{path}: cannot read the file ({error.strerror or error}).") from None
    if b"\0" in head:
        raise DataError(
            f"{path}: holds NUL bytes, so it is not a text table (a binary file, one never "
            "written in full, or UTF-16 text?); save the table as UTF-8 CSV or JSONL."
        )
    available = available_bytes()
    if size * MEMORY_PER_BYTE > available:
        raise DataError(
            f"{path} is {format_bytes(size)}: reading it needs at least "
            f"{format_bytes(size * MEMORY_PER_BYTE)} of memory, but {format_bytes(available)} is "
            "available; train on a sample of its rows, or on a machine with more memory."
        )


def _csv_table(path: Path, delimiter: str, decimal: str, keep_text: bool) -> Table:
    read = read_csv(path, delimiter=delimiter, decimal=decimal)
    frame = _checked_frame(read.frame, path)
    text = None
    if keep_text:
        text = read.text.set_axis(frame.columns, axis=1)
    return _table(frame, path.parent, str(path), dialect=read.dialect, text=text)


def _table(
    frame: pd.DataFrame,
    base_dir: Path | None,
    origin: str,
    *,
    dialect: CsvDialect | None = None,
    text: pd.DataFrame | None = None,
) -> Table:
    frame.attrs[ORIGIN_ATTR] = origin
    return Table(frame, base_dir, origin, dialect, text)


def _choose_format(path: Path, format: str) -> str:
    if path.is_dir():
        if format == "auto" and path.suffix.lower() in TABLE_SUFFIXES:
            raise DataError(
                f"{path} is a folder, though its name ends in '{path.suffix}' like a table; point "
                "data.source at the table file, or set data.format: images if it is an image "
                "folder (one subfolder of images per class)."
            )
        if format not in ("auto", "images", "text"):
            raise DataError(
                f"{path} is a folder, but data.format is '{format}'; point data.source at a "
                "file, or set data.format to images (one subfolder of images per class) or "
                "text (a corpus of text files)."
            )
        return "images" if format == "auto" else format
    if format == "images":
        raise DataError(f"{path}: data.format is 'images', which needs a folder, not a file.")
    if format != "auto":
        return format
    chosen = TABLE_SUFFIXES.get(path.suffix.lower())
    if path.suffix.lower() in (".txt", ".md", ".rst"):
        chosen = "text"
    if chosen is None:
        supported = ", ".join([*TABLE_SUFFIXES, ".txt", ".md", ".rst"])
        raise DataError(
            f"{path}: cannot tell the format from the suffix '{path.suffix}'; supported are "
            f"{supported}, or a folder of images. Rename the file or set data.format "
            "(csv, parquet, jsonl, images, text)."
        )
    return chosen


def _checked_frame(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Reject empty tables, strip column names, and give the rows a 0-based RangeIndex."""
    if frame.shape[1] == 0:
        raise DataError(f"{path}: the table has no columns; is the file empty?")
    if frame.shape[0] == 0:
        raise DataError(f"{path}: the table has columns but no rows; add rows of data.")
    names = [name.strip() if isinstance(name, str) else str(name) for name in frame.columns]
    repeated = sorted(name for name, n in Counter(names).items() if n > 1)  # linear
    if repeated:
        raise DataError(
            f"{path}: column name(s) {', '.join(map(repr, repeated))} appear more than once "
            "(after trimming spaces); rename them."
        )
    frame.columns = pd.Index(names)
    if not isinstance(frame.index, pd.RangeIndex) or frame.index.start != 0:
        # e.g. a parquet file saved with its index: keep a named index as a column
        frame = frame.reset_index(drop=frame.index.name is None)
    return frame


def _read_parquet(path: Path) -> pd.DataFrame:
    import pyarrow as pa

    try:
        return pd.read_parquet(path)
    except PermissionError as error:
        raise DataError(f"{path}: cannot read the file ({error.strerror}).") from None
    except (OSError, ValueError, pa.ArrowException) as error:
        raise DataError(
            f"{path}: not a readable Parquet file ({error}); is it corrupt or another format?"
        ) from None


def _read_jsonl(path: Path) -> pd.DataFrame:
    """One JSON object per line (blank lines skipped); a .json file may also hold one array."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not UTF-8 text (byte {error.start}); save it as UTF-8.") from None
    except OSError as error:
        raise DataError(f"{path}: cannot read the file ({error.strerror or error}).") from None
    if path.suffix.lower() == ".json" and text.lstrip().startswith("["):
        return _records_from_array(text, path)
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = parse_json(line, f"{path}: line {number}", DataError)
        except json.JSONDecodeError as error:
            raise DataError(
                f"{path}: line {number} is not valid JSON ({error.msg} at column {error.colno}); "
                "each line must hold one JSON object."
            ) from None
        if not isinstance(record, dict):
            raise DataError(
                f"{path}: line {number} holds a JSON {type(record).__name__}, not an object; "
                'each line must look like {"column": value, ...}.'
            )
        records.append(record)
    return pd.DataFrame.from_records(records)


def _records_from_array(text: str, path: Path) -> pd.DataFrame:
    try:
        records = parse_json(text, str(path), DataError)
    except json.JSONDecodeError as error:
        raise DataError(f"{path}: line {error.lineno} is not valid JSON ({error.msg}).") from None
    bad = next((i for i, r in enumerate(records) if not isinstance(r, dict)), None)
    if bad is not None:
        raise DataError(f"{path}: item {bad + 1} of the JSON array is not an object.")
    return pd.DataFrame.from_records(records)


_READERS: dict[str, Callable[[Path], pd.DataFrame]] = {
    "parquet": _read_parquet,
    "jsonl": _read_jsonl,
}


def _read_image_folder(folder: Path) -> pd.DataFrame:
    """Columns image (path relative to `folder`) and label (the subfolder), sorted."""
    try:
        classes = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        rows = [(image, c.name) for c in classes for image in _images_under(c, folder)]
    except OSError as error:
        raise DataError(f"{folder}: cannot list the folder ({error.strerror or error}).") from None
    suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
    if not classes:
        loose = sum(1 for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        found = f"it has {loose} images but no subfolders" if loose else "it has no subfolders"
        raise DataError(
            f"{folder}: an image folder needs one subfolder per class ({folder}/<class>/*.png), "
            f"but {found}; move the images into one folder per class."
        )
    if not rows:
        raise DataError(
            f"{folder}: no images found in its class subfolders "
            f"({', '.join(c.name for c in classes[:5])}); images must end in {suffixes}."
        )
    return pd.DataFrame(rows, columns=["image", "label"])


def _images_under(class_dir: Path, root: Path) -> list[str]:
    """Image files anywhere under `class_dir`, skipping hidden files and folders."""
    paths = (p.relative_to(root) for p in class_dir.rglob("*"))
    return sorted(
        path.as_posix()
        for path in paths
        if path.suffix.lower() in IMAGE_SUFFIXES
        and not any(part.startswith(".") for part in path.parts)
        and (root / path).is_file()
    )
