"""The stdlib docstrings table: its rules on a small fake library, and the real table's shape."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from megalith.data.builtin import load_builtin
from megalith.data.docstrings import CLASSES, MAX_CHARS, MIN_CHARS, docstrings_table
from megalith.errors import DataError


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return docstrings_table()


def test_real_table_has_16_classes_of_reasonable_size(table: pd.DataFrame) -> None:
    assert list(table.columns) == ["text", "module"]
    assert 2_000 <= len(table) <= 25_000
    counts = table["module"].value_counts()
    assert len(counts) == CLASSES
    assert counts.min() >= 40
    assert table.index.tolist() == list(range(len(table)))


def test_real_texts_are_unique_short_single_lines(table: pd.DataFrame) -> None:
    assert not table["text"].duplicated().any()
    lengths = table["text"].str.len()
    assert lengths.min() >= MIN_CHARS and lengths.max() <= MAX_CHARS
    assert not table["text"].str.contains(r"\s\s|\n|^\s|\s$", regex=True).any()


def test_classes_are_shuffled_together(table: pd.DataFrame) -> None:
    assert table["module"].head(200).nunique() >= CLASSES - 2


def test_builtin_gives_the_same_table_on_a_second_build(table: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(load_builtin("docstrings"), table)


def _write(root: Path, relative: str, source: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source)


SHARED = "Return the thing that both modules describe the same way."


def test_rules_on_a_fake_library(tmp_path: Path) -> None:
    long = " ".join(["word"] * 100)
    _write(
        tmp_path,
        "alpha/core.py",
        'raise SystemExit("imported, not parsed")\n'
        "class Spool:\n"
        '    """A spool of thread\n    wound   on a reel.\n\n    Details follow."""\n'
        "    def wind(self):\n"
        f'        """{SHARED}"""\n'
        "def short():\n"
        '    """Too short."""\n'
        "if True:\n"
        "    def nested():\n"
        f'        """{long}"""\n',
    )
    _write(tmp_path, "beta.py", f'def other():\n    """{SHARED}"""\n')
    _write(tmp_path, "beta_broken.py", 'def broken(:\n    """Never read because of the error."""\n')
    _write(
        tmp_path,
        "alpha/tests/test_core.py",
        'def test_x():\n    """A test, in a skipped folder."""\n',
    )

    frame = docstrings_table(tmp_path)

    texts = dict(zip(frame["text"], frame["module"], strict=True))
    cut = " ".join(["word"] * 60)  # 60 * 5 - 1 = 299 characters: the most words that fit in 300
    assert texts == {"A spool of thread wound on a reel.": "alpha", cut: "alpha"}


def test_a_library_without_sources_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no documented \.py files"):
        docstrings_table(tmp_path)
