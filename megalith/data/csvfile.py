"""Reading CSV files the way their author wrote them.

A file's dialect (the column separator, and with a separator other than a comma, the decimal
mark) is detected from its first lines unless the config names it. Every cell is read as text
first; a column becomes numbers only when every cell is a number written in that dialect and
none has a leading zero, so codes such as postcodes ('01067') and labels such as '007' stay the
strings they are in the file. The text as read is kept, for writing rows back unchanged.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from megalith.errors import DataError

SEPARATORS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
"""Column separators that detection considers, in order of preference on a tie, and their names."""
DECIMAL_MARKS = {".": "decimal points", ",": "decimal commas"}
"""Decimal marks and their names."""
_SNIFF_BYTES = 64 * 1024
"""How much of the file detection reads."""
_SNIFF_ROWS = 200
"""How many rows detection looks at (the separator: raw lines; the decimal mark: cells)."""
_CSV_FIELDS = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
_INFINITY = r"|[-+]?inf(?:inity)?"
_NUMBER = {
    ".": re.compile(r"^(?:[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?" + _INFINITY + ")$", re.I),
    ",": re.compile(r"^(?:[-+]?(?:\d+,?\d*|,\d+)(?:[eE][-+]?\d+)?" + _INFINITY + ")$", re.I),
}
"""A whole cell (spaces trimmed) that is one number with the given decimal mark."""
_LEADING_ZERO = re.compile(r"^[-+]?0\d")
"""'007', '01067', '-01': written with a leading zero, so a code rather than a quantity."""
_INTEGER = re.compile(r"^[-+]?\d+$")
_INT64_DIGITS = 18
"""Integers written with more characters than this may not fit int64: typed column by column."""


@dataclass(frozen=True)
class CsvDialect:
    """How a CSV file separates columns and writes decimals."""

    delimiter: str
    """The column separator: ',', ';', '\\t' or '|'."""
    decimal: str
    """The decimal mark of numbers: '.' or ','."""

    def describe(self) -> str:
        """'semicolon-separated with decimal commas'."""
        return f"{SEPARATORS[self.delimiter]}-separated with {DECIMAL_MARKS[self.decimal]}"


@dataclass(frozen=True)
class CsvTable:
    """A CSV file read: typed columns, the cells' text, and the dialect used."""

    frame: pd.DataFrame
    """Number columns as int64 / float64, every other column as the file's strings."""
    text: pd.DataFrame
    """Every cell as the file spells it (missing cells NaN), same columns and rows."""
    dialect: CsvDialect


def read_csv(path: Path, *, delimiter: str = "auto", decimal: str = "auto") -> CsvTable:
    """Read a CSV file, detecting what `delimiter` / `decimal` leave as 'auto'.

    Raises:
        DataError: naming the file: empty, not UTF-8, unreadable or malformed.
    """
    if delimiter == "auto":
        delimiter = detect_delimiter(path)
    text = _read_text_cells(path, delimiter)
    if decimal == "auto":
        decimal = detect_decimal(text.head(_SNIFF_ROWS)) if delimiter != "," else "."
    frame = typed_frame(text, decimal)
    return CsvTable(frame, text, CsvDialect(delimiter, decimal))


def detect_delimiter(path: Path) -> str:
    """The separator that splits the header into most columns and every sampled row alike.

    A separator that splits the header into two or more fields is a candidate; the one with
    the largest share of sampled rows as wide as the header wins, then the widest header, then
    the order of `SEPARATORS`. Without a candidate (one column), ',' ('\\t' for a .tsv file).
    """
    fallback = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        with path.open("rb") as handle:
            sample = handle.read(_SNIFF_BYTES + 1)
    except OSError:
        return fallback  # the reader itself reports why the file cannot be read
    if len(sample) > _SNIFF_BYTES:  # drop the line cut short by the sample's end
        sample = sample[: sample.rfind(b"\n", 0, _SNIFF_BYTES) + 1]
    lines = sample.decode("utf-8", errors="replace")
    best: tuple[float, int, int] | None = None
    choice = fallback
    for rank, separator in enumerate(SEPARATORS):
        widths = _row_widths(lines, separator)
        if not widths or widths[0] < 2:
            continue
        rows = widths[1:]
        agreement = sum(w == widths[0] for w in rows) / len(rows) if rows else 1.0
        score = (agreement, widths[0], -rank)
        if best is None or score > best:
            best, choice = score, separator
    return choice


def _row_widths(lines: str, separator: str) -> list[int]:
    """Fields per non-blank row, for the first rows of `lines` ([] if they are not CSV)."""
    rows = csv.reader(io.StringIO(lines, newline=""), delimiter=separator)
    try:
        return [len(row) for row in itertools.islice(rows, _SNIFF_ROWS + 1) if row]
    except csv.Error:  # e.g. a stray carriage return: the reader reports what is wrong
        return []


def detect_decimal(text: pd.DataFrame) -> str:
    """',' when more columns are numbers written with decimal commas than with decimal points."""
    commas = points = 0
    for name in text.columns:
        cells = text[name].dropna().str.strip()
        if len(cells) == 0:
            continue
        if cells.str.match(_NUMBER[","]).all() and cells.str.contains(",", regex=False).any():
            commas += 1
        elif cells.str.match(_NUMBER["."]).all() and cells.str.contains(".", regex=False).any():
            points += 1
    return "," if commas > points else "."


def typed_frame(text: pd.DataFrame, decimal: str) -> pd.DataFrame:
    """`typed_column` of every column, with the cells of all columns classified in one pass.

    A table 100,000 columns wide spends its time in pandas' per-call overhead when typed
    column by column (minutes); here the cost is one regular-expression pass over all cells
    and one conversion per kind of column. Columns holding integers too long for int64 keep
    the column-by-column path, which decides their type exactly as `typed_column` does.
    """
    rows, width = text.shape
    if rows == 0:  # a header alone: every column empty
        return pd.DataFrame({name: typed_column(text[name], decimal) for name in text.columns})
    cells = pd.Series(text.to_numpy(dtype=object).ravel(order="F"), dtype="str").str.strip()

    def per_column(matches: pd.Series) -> np.ndarray:  # (width, rows): column after column
        return matches.to_numpy(dtype=bool, na_value=False).reshape(width, rows)

    present = per_column(cells.notna())
    number = per_column(cells.str.match(_NUMBER[decimal])) | ~present
    integer = per_column(cells.str.match(_INTEGER))
    numeric = present.any(axis=1) & number.all(axis=1)
    numeric &= ~per_column(cells.str.match(_LEADING_ZERO)).any(axis=1)
    long = (per_column(cells.str.len() > _INT64_DIGITS) & integer).any(axis=1)
    whole = numeric & ~long & present.all(axis=1) & integer.all(axis=1)
    fractional = numeric & ~long & ~whole
    if decimal == ",":
        cells = cells.str.replace(",", ".", regex=False)
    typed: dict[str, Any] = {}
    for kind, dtype in ((whole, np.int64), (fractional, np.float64)):
        block = cells.to_numpy(dtype=object).reshape(width, rows)[kind]
        values = pd.to_numeric(pd.Series(block.ravel(), dtype=object)).to_numpy(dtype=dtype)
        for name, column in zip(text.columns[kind], values.reshape(-1, rows), strict=True):
            typed[name] = column
    for i, name in enumerate(text.columns):
        if name in typed:
            continue
        kept = typed_column(text[name], decimal) if long[i] or not present[i].any() else None
        typed[name] = text[name] if kept is None else kept
    return pd.DataFrame({name: typed[name] for name in text.columns}, index=text.index)


def typed_column(cells: pd.Series, decimal: str) -> pd.Series:
    """Numbers (int64, or float64 with NaN) when every present cell is a number written with
    `decimal` and none has a leading zero; otherwise the cells unchanged."""
    present = cells.dropna().str.strip()
    if len(present) == 0:  # nothing to go by: an empty column, as pandas reads one
        return cells.astype("float64")
    if not present.str.match(_NUMBER[decimal]).all():
        return cells
    if present.str.match(_LEADING_ZERO).any():
        return cells
    written = cells.str.strip()
    if decimal == ",":
        written = written.str.replace(",", ".", regex=False)
    return pd.to_numeric(written.astype(object))


def seeming_separator(columns: list[str]) -> str | None:
    """The separator a header read as one column seems to hold ('a;b;c' -> ';'), else None."""
    if len(columns) != 1:
        return None
    counts = {separator: columns[0].count(separator) for separator in SEPARATORS}
    separator, count = max(counts.items(), key=lambda item: item[1])
    return separator if count else None


def unsplit_header_hint(columns: list[str]) -> str:
    """A sentence when the header was read as one column that holds separators, else ''."""
    separator = seeming_separator(columns)
    if separator is None:
        return ""
    shown = "tab" if separator == "\t" else f"'{separator}'"
    return (
        f" The whole header was read as one column ({columns[0][:60]!r}): the column separator "
        f"is likely the cause, and the file seems to use {shown}; set data.delimiter: {shown} "
        f"(megalith init: --delimiter {shown})."
    )


def _read_text_cells(path: Path, delimiter: str) -> pd.DataFrame:
    try:
        return pd.read_csv(path, sep=delimiter, dtype=str)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty; it needs a header line and rows.") from None
    except pd.errors.ParserError as error:
        raise DataError(f"{path}: {_describe_csv_error(str(error), delimiter)}") from None
    except UnicodeDecodeError as error:
        raise DataError(
            f"{path}: not UTF-8 text (byte {error.start}); save the file as UTF-8."
        ) from None
    except OSError as error:
        raise DataError(f"{path}: cannot read the file ({error.strerror or error}).") from None


def _describe_csv_error(message: str, delimiter: str) -> str:
    match = _CSV_FIELDS.search(message)
    if match is None:
        return f"malformed CSV: {message.strip()}"
    expected, line, saw = match.groups()
    name = SEPARATORS[delimiter]
    return (
        f"line {line} has {saw} fields but the header has {expected} ({name}-separated); fix "
        f'that line (a {name} inside a value needs "quotes").'
    )
