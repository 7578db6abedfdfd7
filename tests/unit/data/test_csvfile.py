"""CSV reading: the separator and decimal mark detected, numbers typed, codes kept as text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from megalith.data.csvfile import CsvDialect, read_csv, typed_column, unsplit_header_hint
from megalith.data.sources import DataConfig, load_table
from megalith.errors import ConfigError, DataError

GERMAN = "flaeche;zimmer;typ;preis\n54,5;2;Altbau;612,30\n71;3;Neubau;890,00\n38,25;1;Altbau;\n"


def _write(tmp_path: Path, text: str, name: str = "t.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_semicolons_with_decimal_commas(tmp_path: Path) -> None:
    read = read_csv(_write(tmp_path, GERMAN))
    assert read.dialect == CsvDialect(";", ",")
    assert read.dialect.describe() == "semicolon-separated with decimal commas"
    frame = read.frame
    assert list(frame.columns) == ["flaeche", "zimmer", "typ", "preis"]
    assert frame["flaeche"].tolist() == [54.5, 71.0, 38.25]
    assert frame["zimmer"].dtype == np.int64 and frame["zimmer"].tolist() == [2, 3, 1]
    assert frame["typ"].tolist() == ["Altbau", "Neubau", "Altbau"]
    assert frame["preis"].tolist()[:2] == [612.3, 890.0] and np.isnan(frame["preis"].iloc[2])
    assert read.text["preis"].tolist()[:2] == ["612,30", "890,00"]


@pytest.mark.parametrize(
    ("separator", "name"), [(",", "t.csv"), (";", "t.csv"), ("\t", "t.tsv"), ("|", "t.csv")]
)
def test_each_separator_is_detected(tmp_path: Path, separator: str, name: str) -> None:
    rows = [["a", "b", "note"], ["1", "2.5", "x"], ["3", "4", "y"]]
    path = _write(tmp_path, "".join(separator.join(row) + "\n" for row in rows), name)
    read = read_csv(path)
    assert read.dialect == CsvDialect(separator, ".")
    assert read.frame["b"].tolist() == [2.5, 4.0]


def test_quoted_separators_do_not_mislead_detection(tmp_path: Path) -> None:
    text = 'name,comment,score\nann,"good; very, good",3\nbob,"a;b;c;d",4\n'
    read = read_csv(_write(tmp_path, text))
    assert read.dialect.delimiter == ","
    assert read.frame["comment"].tolist() == ["good; very, good", "a;b;c;d"]


def test_a_header_without_separators_reads_as_one_column(tmp_path: Path) -> None:
    read = read_csv(_write(tmp_path, "text\nhello there\nbye\n"))
    assert read.dialect == CsvDialect(",", ".") and list(read.frame.columns) == ["text"]


def test_a_semicolon_file_with_decimal_points_and_commas_in_text(tmp_path: Path) -> None:
    text = 'x;y;note\n1.5;2;"a,b"\n2.25;3;c\n'
    read = read_csv(_write(tmp_path, text))
    assert read.dialect == CsvDialect(";", ".")
    assert read.frame["x"].tolist() == [1.5, 2.25]


def test_explicit_settings_win_over_detection(tmp_path: Path) -> None:
    path = _write(tmp_path, "a;b\n1,5;2\n")
    assert read_csv(path, delimiter=";", decimal=".").frame["a"].tolist() == ["1,5"]
    assert list(read_csv(path, delimiter=",").frame.columns) == ["a;b"]


def test_codes_with_leading_zeros_stay_text(tmp_path: Path) -> None:
    text = (
        "plz,dept,flag,price,zero\n01067,007,TRUE,1.50,0\n10115,010,False,2,0.5\n"
        "80331,100,true,3,-0\n"
    )
    read = read_csv(_write(tmp_path, text))
    frame = read.frame
    assert frame["plz"].tolist() == ["01067", "10115", "80331"]
    assert frame["dept"].tolist() == ["007", "010", "100"]
    assert frame["flag"].tolist() == ["TRUE", "False", "true"]
    assert frame["price"].tolist() == [1.5, 2.0, 3.0]
    assert frame["zero"].tolist() == [0.0, 0.5, 0.0]  # '0', '0.5', '-0' are numbers
    assert read.text["price"].tolist() == ["1.50", "2", "3"]


@pytest.mark.parametrize(
    ("cells", "decimal", "expected"),
    [
        (["1", "2", None], ".", [1.0, 2.0, None]),
        ([" 7 ", "-3", "+2"], ".", [7, -3, 2]),
        (["1e3", ".5", "inf"], ".", [1000.0, 0.5, float("inf")]),
        (["1,5", ",25", "-2"], ",", [1.5, 0.25, -2.0]),
        (["1.5", "2"], ",", ["1.5", "2"]),  # with decimal commas, '1.5' is not a number
        (["00", "1"], ".", ["00", "1"]),
        (["-01", "1"], ".", ["-01", "1"]),
        (["12a", "1"], ".", ["12a", "1"]),
    ],
)
def test_typed_column(cells: list[str | None], decimal: str, expected: list[object]) -> None:
    typed = typed_column(pd.Series(cells, dtype="str"), decimal)
    got = [None if isinstance(v, float) and np.isnan(v) else v for v in typed.tolist()]
    assert got == expected


def test_an_empty_column_reads_as_missing_numbers(tmp_path: Path) -> None:
    frame = read_csv(_write(tmp_path, "a,b\n1,\n2,\n")).frame
    assert frame["b"].dtype == np.float64 and frame["b"].isna().all()


def test_load_table_records_the_dialect_and_keeps_text_on_request(tmp_path: Path) -> None:
    _write(tmp_path, GERMAN)
    table = load_table("t.csv", relative_to=tmp_path)
    assert table.dialect == CsvDialect(";", ",") and table.text is None
    kept = load_table("t.csv", relative_to=tmp_path, keep_text=True)
    assert kept.text is not None and kept.text["flaeche"].tolist() == ["54,5", "71", "38,25"]
    parquet = tmp_path / "t.parquet"
    table.frame.to_parquet(parquet)
    assert load_table(str(parquet), delimiter=";").dialect is None  # CSV settings only for CSV


def test_the_malformed_line_message_names_the_separator(tmp_path: Path) -> None:
    path = _write(tmp_path, "a;b\n1;2\n3;4;5\n")
    with pytest.raises(DataError) as caught:
        read_csv(path)
    assert "line 3 has 3 fields but the header has 2 (semicolon-separated)" in str(caught.value)


def test_unsplit_header_hint() -> None:
    hint = unsplit_header_hint(["flaeche;zimmer;typ;preis"])
    assert "read as one column" in hint and "data.delimiter: ';'" in hint
    assert "--delimiter tab" in unsplit_header_hint(["a\tb"])
    assert unsplit_header_hint(["text"]) == "" and unsplit_header_hint(["a;b", "c"]) == ""


def test_data_config_reader_settings() -> None:
    assert DataConfig(source="t.csv").delimiter == "auto"
    assert DataConfig(source="t.csv", delimiter="tab").delimiter == "\t"
    assert DataConfig(source="t.csv", delimiter="\\t").delimiter == "\t"
    with pytest.raises(ValueError, match="decimal ',' needs a column separator other than"):
        DataConfig(source="t.csv", delimiter=",", decimal=",")
    with pytest.raises(ValueError, match="delimiter"):
        DataConfig(source="t.csv", delimiter=":")
    read = DataConfig(source="t.csv").read_as(CsvDialect(";", ","))
    assert (read.delimiter, read.decimal) == (";", ",")


def test_config_error_for_bad_reader_settings(tmp_path: Path) -> None:
    from megalith.config import validate_config

    config = {
        "data": {"source": "t.csv", "delimiter": ",", "decimal": ","},
        "inputs": [{"name": "a", "type": "number"}],
        "outputs": [{"name": "b", "type": "number"}],
    }
    with pytest.raises(ConfigError, match="decimal ','"):
        validate_config(config)
