"""Wide CSV tables: all columns typed in one pass, exactly as column by column, in linear time."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from megalith.data.csvfile import typed_column, typed_frame
from megalith.data.sources import load_table

CELLS = st.one_of(
    st.none(),
    st.sampled_from(["1", " 7 ", "-3", "+2", "007", "-01", "1e3", ".5", "inf", "-Infinity", "NaN"]),
    st.sampled_from(["1,5", ",25", "2.0", "12a", "x", "", "99999999999999999999", "-0"]),
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=False).map(repr),
)


@settings(max_examples=150, deadline=None)
@given(
    columns=st.lists(st.lists(CELLS, min_size=3, max_size=3), min_size=1, max_size=6),
    decimal=st.sampled_from([".", ","]),
)
def test_typed_frame_types_every_column_as_typed_column_does(
    columns: list[list[str | None]], decimal: str
) -> None:
    text = pd.DataFrame({f"c{i}": pd.Series(cells, dtype="str") for i, cells in enumerate(columns)})
    expected = pd.DataFrame({name: typed_column(text[name], decimal) for name in text.columns})
    pd.testing.assert_frame_equal(typed_frame(text, decimal), expected)


def _wide_csv(path: Path, columns: int) -> Path:
    header = ",".join(f"c{i}" for i in range(columns)) + ",label\n"
    rows = "".join(",".join(str(r * i % 7) for i in range(columns)) + f",{r}\n" for r in range(3))
    path.write_text(header + rows)
    return path


def test_a_table_of_40000_columns_reads_in_linear_time(tmp_path: Path) -> None:
    """Column by column (and with a quadratic duplicate-name check) this took minutes."""
    started = time.monotonic()
    small = load_table(str(_wide_csv(tmp_path / "small.csv", 4_000))).frame
    small_seconds = time.monotonic() - started
    started = time.monotonic()
    wide = load_table(str(_wide_csv(tmp_path / "wide.csv", 40_000))).frame
    wide_seconds = time.monotonic() - started
    assert wide.shape == (3, 40_001) and small.shape == (3, 4_001)
    assert wide["c39999"].dtype == "int64" and wide["c3"].tolist() == [0, 3, 6]
    assert wide_seconds < 30 * max(small_seconds, 0.5), (small_seconds, wide_seconds)
